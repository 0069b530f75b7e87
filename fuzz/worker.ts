/**
 * One codec's fuzz loop, in a worker thread so that the main thread can stop it when an input hangs. Before
 * each input, the input is copied into shared memory with a counter: a counter that stops moving names the
 * input that hangs. Crashes (a throw from the codec or a broken invariant) and slow inputs are saved here.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { performance } from 'node:perf_hooks'
import { Corpus, Mutator, Rng } from './mutate.js'
import { target } from './targets.js'
import { saveFinding } from './findings.js'

export interface WorkerData {
  target: string
  inputs: number
  seed: number
  findingsDir: string
  /** Int32 [0] counter, [1] length; bytes from offset 8. */
  shared: SharedArrayBuffer
  slowMs: number
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
const counter = new Int32Array(data.shared, 0, 2)
const bytes = new Uint8Array(data.shared, 8)

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

function runOne(input: Buffer): void {
  const n = Math.min(input.length, bytes.length)
  bytes.set(input.subarray(0, n))
  counter[1] = n
  Atomics.add(counter, 0, 1)
  const t0 = performance.now()
  let sig: string
  try {
    sig = t.run(input)
  } catch (err) {
    stats.crashes++
    const e = err as Error
    const kind = `${e.name}: ${e.message}`.slice(0, 200)
    if (!stats.crashKinds.has(kind) && stats.crashKinds.size < 50) {
      stats.crashKinds.add(kind)
      saveFinding(data.findingsDir, t.name, 'crash', input, e.stack ?? kind)
    }
    return
  }
  const dt = performance.now() - t0
  if (dt > data.slowMs) {
    // confirm (a GC pause is not a finding)
    const t1 = performance.now()
    try {
      t.run(input)
    } catch {
      /* counted above if it throws */
    }
    const dt2 = performance.now() - t1
    if (dt2 > data.slowMs) {
      stats.slow++
      saveFinding(data.findingsDir, t.name, 'slow', input, `${dt.toFixed(1)} ms, then ${dt2.toFixed(1)} ms`)
    }
  }
  corpus.offer(input, sig)
}

const REPORT_EVERY = 50_000
for (let i = 0; i < data.inputs; i++) {
  let input: Buffer
  if (i % 16 === 0) {
    if (pool.length === 0) refill()
    input = pool.pop()!
    stats.generated++
  } else {
    input = mutator.mutate(corpus.pick(), corpus.pick())
  }
  runOne(input)
  stats.done++
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
