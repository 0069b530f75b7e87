/**
 * `npm run fuzz`: every codec, then every listener of a real server process, with generated and mutated
 * inputs. Not part of CI (the in-CI property tests are test/unit/protocols, FUZZ_RUNS). See docs/FUZZING.md.
 *
 *   npm run fuzz                                  # every codec 10M inputs, every listener 20k inputs
 *   npm run fuzz -- --inputs 200000 --only native,p004 --listener-inputs 0
 *   npm run fuzz -- --inputs 0 --listener-inputs 5000 --seed 7
 *
 * Inputs that crash, hang or run slow are saved under fuzz-findings/ (gitignored); the exit code is 1 when
 * there is any. A summary (counts, rates, durations) is printed and written to fuzz-findings/summary.json.
 */
import { Worker } from 'node:worker_threads'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { execSync } from 'node:child_process'
import { parseArgs } from 'node:util'
import { targets } from './targets.js'
import { saveFinding } from './findings.js'
import type { WorkerData } from './worker.js'
import { fuzzListeners, type ListenerResult } from './listeners.js'
import { checkCheapForms, checkFindings } from './self-test.js'

const { values: args } = parseArgs({
  options: {
    inputs: { type: 'string', default: '10000000' },
    'listener-inputs': { type: 'string', default: '20000' },
    only: { type: 'string' },
    seed: { type: 'string', default: String(Date.now() % 1_000_000) },
    findings: { type: 'string', default: 'fuzz-findings' },
    'hang-ms': { type: 'string', default: '10000' },
    'slow-ms': { type: 'string', default: '250' },
    'self-test': { type: 'boolean', default: false },
  },
})
const inputs = Number(args.inputs)
const listenerInputs = Number(args['listener-inputs'])
const seed = Number(args.seed)
const findingsDir = args.findings
const hangMs = Number(args['hang-ms'])
const only = args.only?.split(',')
mkdirSync(findingsDir, { recursive: true })

interface CodecResult {
  target: string
  inputs: number
  generated: number
  crashes: number
  hangs: number
  slow: number
  corpus: number
  signatures: number
  seconds: number
  perSecond: number
}

interface Progress {
  done: number
  crashes: number
  slow: number
  generated: number
  corpus: number
  signatures: number
}

const fmt = (n: number) => n.toLocaleString('en-US')

interface CodecOptions {
  findingsDir: string
  hangMs: number
  slowMs: number
  canaries: boolean
}
const codecOptions: CodecOptions = { findingsDir, hangMs, slowMs: Number(args['slow-ms']), canaries: false }

/** Run one codec in a worker; restart it past a hanging input. */
async function fuzzCodec(name: string, total: number, o: CodecOptions = codecOptions): Promise<CodecResult> {
  const { findingsDir, hangMs } = o
  const started = performance.now()
  const acc = { done: 0, crashes: 0, slow: 0, generated: 0, hangs: 0, corpus: 0, signatures: 0 }
  let round = 0
  while (acc.done < total) {
    const shared = new SharedArrayBuffer(32 + 70_000)
    const first = round === 0
    const wd: WorkerData = {
      target: name,
      inputs: total - acc.done,
      seed: seed * 1000 + round++,
      findingsDir,
      shared,
      slowMs: o.slowMs,
      canaries: o.canaries && first, // planted in the first round only: the hang canary ends it
    }
    const w = new Worker(new URL('./worker-boot.mjs', import.meta.url), { workerData: wd })
    const counter = new Int32Array(shared, 0, 8)
    let last: Progress = { done: 0, crashes: 0, slow: 0, generated: 0, corpus: 0, signatures: 0 }
    let lastPrint = performance.now()
    const outcome = await new Promise<'done' | 'hang' | Error>((resolve) => {
      let seen = -1
      let since = performance.now()
      const watch = setInterval(() => {
        const c = Atomics.load(counter, 0)
        if (c !== seen || c === 0) {
          seen = c
          since = performance.now()
        } else if (performance.now() - since > hangMs) {
          clearInterval(watch)
          void w.terminate()
          resolve('hang')
        }
      }, 250)
      w.on('message', (p: Progress) => {
        last = p
        const now = performance.now()
        if (now - lastPrint > 10_000) {
          lastPrint = now
          const done = acc.done + p.done
          const rate = done / ((now - started) / 1000)
          process.stdout.write(
            `  ${name}: ${fmt(done)} / ${fmt(total)} (${fmt(Math.round(rate))}/s, corpus ${p.corpus}, classes ${p.signatures}, crashes ${acc.crashes + p.crashes})\n`,
          )
        }
      })
      w.on('error', (err) => {
        clearInterval(watch)
        resolve(err)
      })
      w.on('exit', () => {
        clearInterval(watch)
        resolve('done')
      })
    })
    // the counts from shared memory: the last progress message may be up to 50,000 inputs old when a worker hangs
    acc.done += Atomics.load(counter, 0) // (a hanging input counts as run)
    acc.crashes += Atomics.load(counter, 2)
    acc.slow += Atomics.load(counter, 3)
    acc.generated += Atomics.load(counter, 4)
    acc.corpus = last.corpus
    acc.signatures = Math.max(acc.signatures, last.signatures)
    if (outcome === 'hang') {
      acc.hangs++
      const len = Atomics.load(counter, 1)
      const input = Buffer.from(new Uint8Array(shared, 32, len))
      const file = saveFinding(findingsDir, name, 'hang', input, `no progress for ${hangMs} ms`)
      process.stdout.write(`  ${name}: HANG on an input of ${len} bytes, saved to ${file}\n`)
    } else if (outcome instanceof Error) {
      if (Atomics.load(counter, 0) === 0) throw outcome // it did not even start: a bug of the harness
      acc.crashes++
      process.stdout.write(`  ${name}: the worker died: ${outcome.stack}\n`)
      const len = Atomics.load(counter, 1)
      saveFinding(findingsDir, name, 'crash', Buffer.from(new Uint8Array(shared, 32, len)), outcome.stack ?? String(outcome))
    }
  }
  const seconds = (performance.now() - started) / 1000
  return { target: name, ...acc, inputs: acc.done, seconds, perSecond: acc.done / seconds }
}

function commit(): string {
  try {
    return execSync('git rev-parse --short HEAD', { encoding: 'utf8' }).trim()
  } catch {
    return 'unknown'
  }
}

if (args['self-test']) {
  // the cheap forms against what they replaced, then every codec with planted findings (fuzz/self-test.ts)
  const bad = checkCheapForms()
  process.stdout.write(`self-test: cheap forms ${bad.length === 0 ? 'agree' : 'DISAGREE'}\n`)
  const dir = mkdtempSync(join(tmpdir(), 'sb-fuzz-self-test-'))
  const n = 5000
  for (const t of targets) {
    if (only !== undefined && !only.includes(t.name)) continue
    const r = await fuzzCodec(t.name, n, { findingsDir: dir, hangMs: 1500, slowMs: 50, canaries: true })
    const missing = checkFindings(dir, t.name, r, n)
    bad.push(...missing)
    process.stdout.write(
      `self-test ${t.name}: ${r.crashes} crashes, ${r.hangs} hangs, ${r.slow} slow in ${fmt(r.inputs)} inputs: ${missing.length === 0 ? 'all found' : 'MISSED'}\n`,
    )
  }
  for (const b of bad) process.stdout.write(`  ${b}\n`)
  process.stdout.write(bad.length === 0 ? `self-test passed (findings in ${dir})\n` : 'self-test FAILED\n')
  process.exit(bad.length === 0 ? 0 : 1)
}

const startedAt = new Date()
const machine = `${cpus().length} × ${cpus()[0]?.model ?? '?'}, node ${process.version}`
process.stdout.write(`fuzz: seed ${seed}, commit ${commit()}, ${machine}\n`)
const codecResults: CodecResult[] = []
if (inputs > 0) {
  for (const t of targets) {
    if (only !== undefined && !only.includes(t.name)) continue
    process.stdout.write(`codec ${t.name}: ${fmt(inputs)} inputs\n`)
    const r = await fuzzCodec(t.name, inputs)
    codecResults.push(r)
    process.stdout.write(
      `codec ${t.name}: ${fmt(r.inputs)} inputs in ${r.seconds.toFixed(0)} s (${fmt(Math.round(r.perSecond))}/s): ${r.crashes} crashes, ${r.hangs} hangs, ${r.slow} slow; corpus ${r.corpus}, ${r.signatures} outcome classes\n`,
    )
  }
}
let listenerResults: ListenerResult[] = []
if (listenerInputs > 0) listenerResults = await fuzzListeners({ inputs: listenerInputs, seed, findingsDir, only })

const summary = {
  startedAt: startedAt.toISOString(),
  seconds: (Date.now() - startedAt.getTime()) / 1000,
  seed,
  commit: commit(),
  machine,
  codecs: codecResults,
  listeners: listenerResults,
}
writeFileSync(`${findingsDir}/summary.json`, JSON.stringify(summary, null, 2) + '\n')
const header = (last: string) =>
  `\n| target | inputs | seconds | inputs/s | crashes | hangs | ${last} |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n`
if (codecResults.length > 0) process.stdout.write(header('slow'))
for (const r of codecResults)
  process.stdout.write(
    `| codec ${r.target} | ${fmt(r.inputs)} | ${r.seconds.toFixed(0)} | ${fmt(Math.round(r.perSecond))} | ${r.crashes} | ${r.hangs} | ${r.slow} |\n`,
  )
if (listenerResults.length > 0) process.stdout.write(header('errors'))
for (const r of listenerResults)
  process.stdout.write(
    `| listener ${r.listener} | ${fmt(r.inputs)} | ${r.seconds.toFixed(0)} | ${fmt(Math.round(r.perSecond))} | ${r.crashes} | ${r.hangs} | ${r.errors} |\n`,
  )
const bad =
  codecResults.some((r) => r.crashes + r.hangs + r.slow > 0) || listenerResults.some((r) => r.crashes + r.hangs + r.errors > 0)
process.stdout.write(bad ? `findings saved under ${findingsDir}/\n` : 'no crash, no hang\n')
process.exitCode = bad ? 1 : 0
