/**
 * One codec's fuzz loop, in a worker thread so that the main thread can stop it when an input hangs. Before
 * each input, the input is copied into shared memory with a counter: a counter that stops moving names the
 * input that hangs. Crashes (a throw from the codec or a broken invariant) and slow inputs are saved here.
 * The loop is the hot path of a 10-million-input run: docs/FUZZING.md ("Speed") says what was made cheap in it
 * and why it still checks the same things.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { performance } from 'node:perf_hooks'
import { Corpus, Mutator, Rng } from './mutate.js'
import { target } from './targets.js'
import { saveFinding } from './findings.js'
import { canaries as plant } from './self-test.js'

export interface WorkerData {
  target: string
  inputs: number
  seed: number
  findingsDir: string
  /** Int32 [0] inputs started, [1] the input's length, [2] crashes, [3] slow, [4] generated; its bytes from
   * offset 32. The counts are there for a worker that hangs or dies between two progress messages. */
  shared: SharedArrayBuffer
  slowMs: number
  /** `--self-test`: plant the canaries of fuzz/self-test.ts. */
  canaries: boolean
}

const data = workerData as WorkerData
const t = target(data.target)
const rng = new Rng(data.seed)
const corpus = new Corpus(rng)
const mutator = new Mutator(
  rng,
  t.maxLen,
  t.dict.map((s) => Buffer.from(s, 'latin1')),
)
const canaries = data.canaries ? plant(t, data.slowMs) : undefined
const run = canaries === undefined ? (input: Buffer) => t.run(input) : canaries.run
const counter = new Int32Array(data.shared, 0, 8)
const bytes = new Uint8Array(data.shared, 32)

const stats = { done: 0, crashes: 0, slow: 0, generated: 0, crashKinds: new Set<string>() }
const GEN_BATCH = 2000
let genSeed = data.seed
let pool: Buffer[] = []

function refill(): void {
  pool = t.generate(genSeed++, GEN_BATCH)
}

for (const s of t.seeds()) corpus.offer(s, `seed:${corpus.entries.length}`)
refill()
for (const g of pool) corpus.add(g)

/** The stack depth Node gives errors; the loop runs with none (below). */
const STACK_LIMIT = Error.stackTraceLimit

/**
 * The stack of a crash: the loop runs with `Error.stackTraceLimit = 0` (decoders throw and catch an error on
 * most malformed inputs, and capturing its stack was a third of the native target's time), so a crashing input
 * is run once more with stacks on. The codecs are pure: it throws the same way again.
 */
function stackOf(input: Buffer, first: Error): string {
  Error.stackTraceLimit = STACK_LIMIT
  try {
    run(input)
  } catch (err) {
    return (err as Error).stack ?? String(err)
  } finally {
    Error.stackTraceLimit = 0
  }
  return `${first.name}: ${first.message}\n    (no stack: the input did not throw again when run a second time)`
}

function runOne(input: Buffer): void {
  // for the main thread's hang detection: the input, its length, then the count (a count that stops moving
  // names the input in shared memory); a copy of at most maxLen bytes
  bytes.set(input.length <= bytes.length ? input : input.subarray(0, bytes.length))
  counter[1] = Math.min(input.length, bytes.length)
  Atomics.add(counter, 0, 1)
  let sig: string
  try {
    sig = run(input)
  } catch (err) {
    Atomics.store(counter, 2, ++stats.crashes)
    const e = err as Error
    const kind = `${e.name}: ${e.message}`.slice(0, 200)
    if (!stats.crashKinds.has(kind) && stats.crashKinds.size < 50) {
      stats.crashKinds.add(kind)
      saveFinding(data.findingsDir, t.name, 'crash', input, stackOf(input, e))
    }
    return
  }
  corpus.offer(input, sig)
}

/** A batch over `--slow-ms` (rare: a GC pause, the fast-check refill, or a slow input): each of its inputs
 * is timed alone, twice, and one over `--slow-ms` both times is a finding, as before batches. */
function confirmSlow(batch: Buffer[], n: number, batchMs: number): void {
  for (let i = 0; i < n; i++) {
    const input = batch[i]!
    const dt = timeOne(input)
    if (dt <= data.slowMs) continue
    const dt2 = timeOne(input)
    if (dt2 > data.slowMs) {
      Atomics.store(counter, 3, ++stats.slow)
      saveFinding(
        data.findingsDir,
        t.name,
        'slow',
        input,
        `${dt.toFixed(1)} ms, then ${dt2.toFixed(1)} ms (its batch of ${n} inputs took ${batchMs.toFixed(1)} ms)`,
      )
    }
  }
}

function timeOne(input: Buffer): number {
  const t0 = performance.now()
  try {
    run(input)
  } catch {
    /* counted when it ran in the loop */
  }
  return performance.now() - t0
}

// Slow inputs are found per batch: one clock read per BATCH inputs instead of two per input (performance.now()
// costs 0.1–0.2 µs; an input's whole budget at 50,000/s is 20 µs). Any input over --slow-ms makes its batch over.
const BATCH = 64
const REPORT_EVERY = 50_000
const batch: Buffer[] = new Array<Buffer>(BATCH)
let inBatch = 0
let batchStart = 0

function endBatch(): void {
  const ms = performance.now() - batchStart
  if (ms > data.slowMs) confirmSlow(batch, inBatch, ms)
  inBatch = 0
  batchStart = performance.now()
}

Error.stackTraceLimit = 0
batchStart = performance.now()
for (let i = 0; i < data.inputs; i++) {
  let input: Buffer
  if (canaries?.at(i) !== undefined) input = canaries.at(i)!
  else if (i % 16 === 0) {
    if (pool.length === 0) {
      endBatch() // (the batch so far is judged without fast-check's time, and the next one starts after it)
      refill()
      batchStart = performance.now()
    }
    input = pool.pop()!
    Atomics.store(counter, 4, ++stats.generated)
  } else {
    input = mutator.mutate(corpus.pick(), corpus.pick())
  }
  runOne(input)
  stats.done++
  batch[inBatch++] = input
  if (inBatch === BATCH || stats.done === data.inputs) endBatch()
  if (stats.done % REPORT_EVERY === 0 || stats.done === data.inputs) {
    parentPort!.postMessage({
      done: stats.done,
      crashes: stats.crashes,
      slow: stats.slow,
      generated: stats.generated,
      corpus: corpus.entries.length,
      signatures: corpus.signatures,
    })
  }
}
Error.stackTraceLimit = STACK_LIMIT
