/**
 * Shared by the issue 13 probes (findings 1–5): start a server of some checkout (SWITCHBOARD_SERVER_ROOT, as the
 * bench does) on SQLite in a temporary folder, read its CPU, RSS and descriptors from /proc, open raw sockets, and
 * repeat a measurement `--runs` times (a fresh server each time) printing each run and the medians.
 *
 * Options only the fixed server knows (per-address caps, the login rate…) are passed through `opt()`, which drops
 * them for a checkout whose `serve --help` does not list them (scripts/spawn-server.ts serverKnowsOption).
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { serverKnowsOption, spawnServer } from '../../../scripts/spawn-server.js'
import { encode } from '../../../src/protocols/native/codec.js'
import { NativeClient } from '../../../test/helpers/native-client.js'

export const ROOT = process.env.SWITCHBOARD_SERVER_ROOT ?? fileURLToPath(new URL('../../..', import.meta.url))

/** The checkout under test: its short commit, for the printed figures. */
export function serverCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim()
  } catch {
    return ROOT
  }
}

/** `[flag, value]` if the server under test lists `flag` in `serve --help`, else nothing. */
export function opt(flag: string, value?: string): string[] {
  if (!serverKnowsOption(flag)) return []
  return value === undefined ? [flag] : [flag, value]
}

export interface Server {
  pid: number
  /** The native port. */
  port: number
  /** Listening ports by listener name (native, http, p001, p002, p004). */
  ports: () => Record<string, number>
  /** Everything the server wrote to stderr (warnings). */
  stderr: () => string
  stop: () => Promise<void>
}

/** `args` follow `switchboard serve --port 0 --store sqlite --data-dir <temp> --log-level warn`. */
export async function startServer(args: string[], wrapper?: string[]): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), 'sb-hostile-probe-'))
  let out = ''
  let err = ''
  const s = await spawnServer(['--port', '0', '--store', 'sqlite', '--data-dir', dir, '--log-level', 'warn', ...args], {
    onStdout: (d) => (out += d.toString()),
    onStderr: (d) => {
      if (err.length < 1 << 16) err += d.toString()
    },
    ...(wrapper !== undefined && { wrapper }),
    timeoutMs: 60_000,
  })
  const ports = (): Record<string, number> => {
    const p: Record<string, number> = {}
    for (const m of out.matchAll(/^(\S+)\s+listening on (?:http:\/\/)?[^\s:]+:(\d+)$/gm)) p[m[1]!] = Number(m[2])
    return p
  }
  // The listening lines of every listener (the native one resolved spawnServer; the others may follow).
  const want = args.filter((a) => /^--(http|p001|p002|p004)-port$/.test(a)).length
  const end = Date.now() + 10_000
  while (Object.keys(ports()).length < 1 + want && Date.now() < end) await sleep(20)
  return {
    pid: s.child.pid!,
    port: s.port,
    ports,
    stderr: () => err,
    stop: async () => {
      s.child.kill('SIGKILL')
      await s.exited
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** CPU seconds (user + system) of a process, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/** Resident set size in MiB, from /proc/<pid>/status (VmRSS). */
export function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Number(m?.[1] ?? 0) / 1024
}

/** Descriptors the process holds open. */
export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length
}

/** Poll `rssMiB` every `everyMs` while `run` runs; resolves to the highest reading. */
export function peakRss(pid: number, everyMs = 50): { stop: () => number } {
  let peak = rssMiB(pid)
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssMiB(pid))
    } catch {
      /* the process went */
    }
  }, everyMs)
  return {
    stop: () => {
      clearInterval(timer)
      return peak
    },
  }
}

export interface Raw {
  socket: net.Socket
  closed: () => boolean
  /** ms from connect to the server's close, or undefined while open. */
  closedAfterMs: () => number | undefined
  data: () => Buffer
}

/** A raw TCP connection that records whether (and when) the server closed it. */
export async function rawConnect(port: number, timeoutMs = 10_000): Promise<Raw> {
  const socket = net.connect(port, '127.0.0.1')
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('connect timed out')), timeoutMs)
    socket.once('connect', () => {
      clearTimeout(timer)
      resolve()
    })
    socket.once('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
  })
  const t0 = performance.now()
  let closedAt: number | undefined
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => {
    if (chunks.length < 64) chunks.push(c)
  })
  socket.on('close', () => (closedAt ??= performance.now()))
  socket.on('error', () => undefined)
  return {
    socket,
    closed: () => closedAt !== undefined,
    closedAfterMs: () => (closedAt === undefined ? undefined : closedAt - t0),
    data: () => Buffer.concat(chunks),
  }
}

/**
 * GET with a deadline: the status and the ms it took, status 0 when it failed or timed out. `from` is the local
 * address to connect from (127.0.0.2 is another client address on Linux's loopback, for per-address limits).
 */
export function timedGet(url: string, timeoutMs = 3000, from?: string): Promise<{ status: number; ms: number; body: string }> {
  const t0 = performance.now()
  return new Promise((resolve) => {
    const done = (status: number, body = ''): void => resolve({ status, ms: performance.now() - t0, body })
    const req = http.get(url, { ...(from !== undefined && { localAddress: from }), agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => done(res.statusCode ?? 0, Buffer.concat(chunks).toString()))
      res.on('error', () => done(0))
    })
    req.setTimeout(timeoutMs, () => req.destroy())
    req.on('error', () => done(0))
  })
}

/**
 * A new native client connects (from `from`, default 127.0.0.1) and REGISTERs: the ms it took, or -1 with the
 * error printed.
 */
export async function nativeRegisterMs(port: number, name: string, from?: string): Promise<number> {
  const t0 = performance.now()
  let c: NativeClient | undefined
  try {
    const socket = net.connect({ port, host: '127.0.0.1', ...(from !== undefined && { localAddress: from }) })
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve())
      socket.once('error', reject)
    })
    c = NativeClient.over(socket)
    await c.register(name)
    return performance.now() - t0
  } catch (e) {
    console.log(`# a native client from ${from ?? '127.0.0.1'} could not register: ${(e as Error).message.slice(0, 200)}`)
    return -1
  } finally {
    c?.destroy()
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const n = s.length
  if (n === 0) return Number.NaN
  return n % 2 === 1 ? s[n >> 1]! : (s[n / 2 - 1]! + s[n / 2]!) / 2
}

export type Figures = Record<string, number>

/**
 * Run `measure` `runs` times, one after the other, each on a fresh server it starts itself; print each run's
 * figures and their medians (one JSON line each, then a table).
 */
export async function repeat(title: string, runs: number, measure: (run: number) => Promise<Figures>): Promise<void> {
  const commit = serverCommit()
  console.log(`# ${title}\n# server ${commit} (${ROOT}), node ${process.version}, ${new Date().toISOString()}`)
  const all: Figures[] = []
  for (let i = 0; i < runs; i++) {
    const f = await measure(i)
    all.push(f)
    console.log(`run ${i + 1}: ${JSON.stringify(f)}`)
  }
  if (runs > 1) {
    const keys = Object.keys(all[0]!)
    const med: Figures = {}
    for (const k of keys) med[k] = median(all.map((f) => f[k] ?? Number.NaN))
    console.log(`median of ${runs}: ${JSON.stringify(med)}`)
  }
}

export const round = (x: number, digits = 1): number => Number(x.toFixed(digits))

/** The pinger's code, plain JavaScript run in a worker thread (its own event loop). */
const PINGER = `
const { parentPort, workerData } = require('node:worker_threads')
const net = require('node:net')
const { port, register, ping, everyMs } = workerData
const socket = net.connect(port, '127.0.0.1')
socket.setNoDelay(true)
let buf = Buffer.alloc(0)
let waiting = 0
let sentAt = 0
let stopped = false
const rtts = []
let onAnswer = () => {}
socket.on('data', (chunk) => {
  buf = Buffer.concat([buf, chunk])
  while (buf.length >= 4 && buf.length >= buf.readUInt32BE(0) + 4) {
    const n = buf.readUInt32BE(0) + 4
    const corr = n >= 9 ? buf.readUInt32BE(5) : 0
    buf = buf.subarray(n)
    if (corr === waiting) onAnswer()
  }
})
socket.on('error', () => {})
const request = (frame, corr) => new Promise((resolve) => {
  waiting = corr
  onAnswer = resolve
  const f = Buffer.from(frame)
  f.writeUInt32BE(corr, 5)
  socket.write(f)
})
parentPort.on('message', () => (stopped = true))
socket.once('connect', async () => {
  await request(register, 1)
  parentPort.postMessage({ ready: true })
  for (let corr = 2; !stopped; corr++) {
    const t0 = performance.now()
    await request(ping, corr)
    rtts.push(performance.now() - t0)
    await new Promise((r) => setTimeout(r, everyMs))
  }
  socket.destroy()
  parentPort.postMessage({ rtts })
})
`

/**
 * A registered native client that PINGs every `everyMs` from a worker thread, so that its round trips measure the
 * server, not this process's event loop (busy writing the load). `stop()` resolves to the round trips in ms.
 */
export async function startPinger(port: number, name: string, everyMs = 50): Promise<{ stop: () => Promise<number[]> }> {
  const register = encode({ type: 'REGISTER', corr: 1, version: 1, flags: 0, name })
  const ping = encode({ type: 'PING', corr: 2 })
  const worker = new Worker(PINGER, { eval: true, workerData: { port, register, ping, everyMs } })
  const messages: { ready?: boolean; rtts?: number[] }[] = []
  let wake = (): void => undefined
  worker.on('message', (m: { ready?: boolean; rtts?: number[] }) => {
    messages.push(m)
    wake()
  })
  const next = async (): Promise<{ ready?: boolean; rtts?: number[] }> => {
    while (messages.length === 0) await new Promise<void>((r) => (wake = r))
    return messages.shift()!
  }
  await next()
  return {
    stop: async () => {
      worker.postMessage('stop')
      const m = await next()
      await worker.terminate()
      return m.rtts ?? []
    },
  }
}
