/**
 * The listener half of `npm run fuzz`: a real `switchboard serve` process with every listener (native TCP,
 * HTTP and its WebSocket, the 001/002/004 gateways, the 003 ZeroMQ REP socket), fed mutated inputs over real
 * sockets. A finding is: the process exits (crash), it stops answering a native PING or GET /healthz (hang), an
 * HTTP body gets a 500, the 003 REP socket does not answer, or the server logs at level error or above.
 */
import { connect, createServer, type Socket } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import WebSocket from 'ws'
import { spawnServer } from '../scripts/spawn-server.js'
import { encode, FrameReader } from '../src/protocols/native/codec.js'
import { encodeClient } from '../src/protocols/p004/codec.js'
import { Corpus, Mutator, Rng } from './mutate.js'
import { target, type Target } from './targets.js'
import { saveFinding } from './findings.js'
import { routes } from '../src/protocols/http/routes-spec.js'

export interface ListenerResult {
  listener: string
  inputs: number
  seconds: number
  perSecond: number
  crashes: number
  hangs: number
  /** 500 answers, unanswered 003 requests, error log lines. */
  errors: number
}

interface Options {
  inputs: number
  seed: number
  findingsDir: string
  only?: string[] | undefined
}

const CONCURRENCY = 8
const PROBE_EVERY = 250
const WAIT_MS = 5000

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((r) => {
          const s = createServer()
          s.listen(0, '127.0.0.1', () => r(s))
        }),
    ),
  )
  const ports = servers.map((s) => (s.address() as { port: number }).port)
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
  return ports
}

interface Server {
  ports: Record<string, string>
  stop(): Promise<void>
  alive(): boolean
  errorLines: string[]
}

async function startServer(): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), 'sb-fuzz-'))
  const [pub, rep, e0] = await freePorts(3)
  const errorLines: string[] = []
  const ports: Record<string, string> = {}
  let out = ''
  const s = await spawnServer(
    [
      ...['--data-dir', dir, '--store', 'memory:', '--port', '0', '--http-port', '0'],
      ...['--p001-port', '0', '--p002-port', '0', '--p004-port', '0'],
      ...['--zmq-pub-port', String(pub), '--zmq-rep-port', String(rep), '--zmq-endpoint-ports', `${e0}-${e0! + 3}`],
      ...['--log-format', 'json', '--log-level', 'warn', '--login-timeout', '3000'],
    ],
    {
      label: 'fuzz server',
      onStdout: (d) => {
        out += d.toString()
        let nl: number
        while ((nl = out.indexOf('\n')) !== -1) {
          const line = out.slice(0, nl)
          out = out.slice(nl + 1)
          if (/"level":(5\d|6\d)/.test(line)) errorLines.push(line)
          const m = /^(\S+)\s+listening on (?:\w+:\/\/)?(\S+)$/.exec(line)
          if (m) ports[m[1]!] = m[2]!
        }
      },
    },
  )
  // the listening lines come together, before the native one is reported; wait for the last of them
  const until = Date.now() + 10_000
  while (ports['p003-rep'] === undefined && Date.now() < until) await new Promise((r) => setImmediate(r))
  let exited = false
  void s.exited.then(() => (exited = true))
  return {
    ports,
    errorLines,
    alive: () => !exited,
    stop: async () => {
      s.child.kill('SIGTERM')
      await s.exited
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

const hostPort = (a: string): { host: string; port: number } => {
  const i = a.lastIndexOf(':')
  return { host: a.slice(0, i), port: Number(a.slice(i + 1)) }
}

/** Connect, write the input in up to three pieces, half-close; resolves when the server closes or after WAIT_MS. */
function tcpExchange(addr: string, input: Buffer, rng: Rng): Promise<void> {
  return new Promise((resolve) => {
    const { host, port } = hostPort(addr)
    const sock: Socket = connect(port, host)
    const done = () => {
      clearTimeout(timer)
      sock.destroy()
      resolve()
    }
    const timer = setTimeout(done, WAIT_MS)
    sock.on('error', done)
    sock.on('close', done)
    sock.on('data', () => {})
    sock.on('connect', () => {
      const a = rng.int(input.length + 1)
      const b = a + rng.int(input.length - a + 1)
      for (const part of [input.subarray(0, a), input.subarray(a, b), input.subarray(b)]) if (part.length > 0) sock.write(part)
      sock.end()
    })
  })
}

function wsExchange(url: string, input: Buffer, rng: Rng): Promise<void> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url)
    const done = () => {
      clearTimeout(timer)
      ws.terminate()
      resolve()
    }
    const timer = setTimeout(done, WAIT_MS)
    ws.on('error', done)
    ws.on('close', done)
    ws.on('open', () => {
      const a = rng.int(input.length + 1)
      ws.send(input.subarray(0, a))
      ws.send(input.subarray(a))
      ws.close()
    })
  })
}

/** A native PING answered by a PONG, and /healthz answering 200: the server still serves. */
async function probe(server: Server): Promise<boolean> {
  if (!server.alive()) return false
  const ping = new Promise<boolean>((resolve) => {
    const { host, port } = hostPort(server.ports.native!)
    const sock = connect(port, host)
    const reader = new FrameReader(1 << 20)
    const finish = (ok: boolean) => {
      clearTimeout(timer)
      sock.destroy()
      resolve(ok)
    }
    const timer = setTimeout(() => finish(false), WAIT_MS)
    sock.on('error', () => finish(false))
    sock.on('data', (d) => {
      for (const f of reader.push(d)) if (f.ok && f.frame.type === 'PONG') finish(true)
    })
    sock.on('connect', () => sock.write(encode({ type: 'PING', corr: 1 })))
  })
  const health = fetch(`http://${server.ports.http}/healthz`, { signal: AbortSignal.timeout(WAIT_MS) })
    .then((r) => r.status === 200)
    .catch(() => false)
  const [a, b] = await Promise.all([ping, health])
  return a && b
}

interface Driver {
  name: string
  codec: Target
  /** Bytes put before a mutated input (a valid login) now and then, so that logged-in paths are reached. */
  prefix?: (rng: Rng, i: number) => Buffer
  send(server: Server, input: Buffer, rng: Rng): Promise<string | undefined>
}

const login004 = (_rng: Rng, i: number) => encodeClient({ kind: 'login', name: `fz${i}`, utcOffsetSeconds: null })

let httpToken: string | undefined
const bodyRoutes = routes.filter((r) => r.body !== undefined && !r.url.includes(':') && r.operationId !== 'register')

const drivers: Driver[] = [
  {
    name: 'native',
    codec: target('native'),
    prefix: (_rng, i) => encode({ type: 'REGISTER', corr: 1, version: 1, flags: 0, name: `fz${i}` }),
    send: async (s, input, rng) => void (await tcpExchange(s.ports.native!, input, rng)),
  },
  {
    name: 'websocket',
    codec: target('native'),
    prefix: (_rng, i) => encode({ type: 'REGISTER', corr: 1, version: 1, flags: 0, name: `fw${i}` }),
    send: async (s, input, rng) => void (await wsExchange(`ws://${s.ports.http}/v1/ws`, input, rng)),
  },
  {
    name: 'http',
    codec: target('http-json'),
    send: async (s, input, rng) => {
      if (httpToken === undefined) {
        const r = await fetch(`http://${s.ports.http}/v1/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ name: `fuzzhttp${rng.int(1e6)}` }),
        })
        httpToken = ((await r.json()) as { token: string }).token
      }
      const route = rng.pick(bodyRoutes)
      const r = await fetch(`http://${s.ports.http}${route.url}`, {
        method: route.method,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${httpToken}` },
        body: input,
        signal: AbortSignal.timeout(WAIT_MS),
      }).catch((err: Error) => err)
      if (r instanceof Error) return `no answer to ${route.method} ${route.url}: ${r.message}`
      await r.arrayBuffer()
      return r.status >= 500 ? `${route.method} ${route.url} answered ${r.status}` : undefined
    },
  },
  {
    name: 'p001',
    codec: target('p001'),
    send: async (s, input, rng) => void (await tcpExchange(s.ports.p001!, input, rng)),
  },
  {
    name: 'p002',
    codec: target('p002'),
    send: async (s, input, rng) => void (await tcpExchange(s.ports.p002!, input, rng)),
  },
  {
    name: 'p004',
    codec: target('p004'),
    prefix: login004,
    send: async (s, input, rng) => void (await tcpExchange(s.ports.p004!, input, rng)),
  },
  {
    name: 'p003',
    codec: target('p003'),
    send: async (s, input) => {
      const zmq = await import('zeromq')
      const req = new zmq.Request({ receiveTimeout: WAIT_MS, linger: 0 })
      try {
        req.connect(`tcp://${s.ports['p003-rep']}`)
        await req.send(input)
        await req.receive()
        return undefined
      } catch (err) {
        return `REP did not answer: ${(err as Error).message}`
      } finally {
        req.close()
      }
    },
  },
]

async function fuzzOne(d: Driver, o: Options): Promise<ListenerResult> {
  const rng = new Rng(o.seed ^ (d.name.length * 7919))
  const corpus = new Corpus(rng)
  for (const s of [...d.codec.seeds(), ...d.codec.generate(o.seed, 500)]) corpus.add(s)
  const mutator = new Mutator(
    rng,
    d.codec.maxLen,
    d.codec.dict.map((s) => Buffer.from(s, 'latin1')),
  )
  let server = await startServer()
  const started = performance.now()
  const r: ListenerResult = { listener: d.name, inputs: 0, seconds: 0, perSecond: 0, crashes: 0, hangs: 0, errors: 0 }
  let next = 0
  let batch: Buffer[] = []
  while (next < o.inputs) {
    batch = []
    const n = Math.min(PROBE_EVERY, o.inputs - next)
    for (let i = 0; i < n; i++) {
      let input = mutator.mutate(corpus.pick(), corpus.pick())
      if (d.prefix !== undefined && rng.chance(2)) input = Buffer.concat([d.prefix(rng, next + i), input])
      batch.push(input)
    }
    let k = 0
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (k < batch.length) {
          const input = batch[k++]!
          const problem = await d.send(server, input, rng)
          if (problem !== undefined) {
            r.errors++
            saveFinding(o.findingsDir, `listener-${d.name}`, 'error', input, problem)
          }
        }
      }),
    )
    next += n
    r.inputs = next
    const errorsLogged = server.errorLines.splice(0)
    if (errorsLogged.length > 0) {
      r.errors += errorsLogged.length
      saveFinding(o.findingsDir, `listener-${d.name}`, 'logged', Buffer.concat(batch), errorsLogged.join('\n'))
    }
    if (!(await probe(server))) {
      const dead = !server.alive()
      if (dead) r.crashes++
      else r.hangs++
      // the culprit is among this batch: save them all, one file each
      for (const input of batch)
        saveFinding(o.findingsDir, `listener-${d.name}`, dead ? 'crash' : 'hang', input, `batch of ${batch.length}`)
      process.stdout.write(`  listener ${d.name}: the server ${dead ? 'exited' : 'stopped answering'}; restarting it\n`)
      await server.stop().catch(() => {})
      server = await startServer()
      httpToken = undefined
    }
    if (next % 5000 < PROBE_EVERY)
      process.stdout.write(
        `  listener ${d.name}: ${next} / ${o.inputs} (${Math.round(next / ((performance.now() - started) / 1000))}/s)\n`,
      )
  }
  await server.stop()
  httpToken = undefined
  r.seconds = (performance.now() - started) / 1000
  r.perSecond = r.inputs / r.seconds
  return r
}

export async function fuzzListeners(o: Options): Promise<ListenerResult[]> {
  const out: ListenerResult[] = []
  for (const d of drivers) {
    if (o.only !== undefined && !o.only.includes(`listener-${d.name}`) && !o.only.includes('listeners')) continue
    process.stdout.write(`listener ${d.name}: ${o.inputs} inputs over real sockets\n`)
    const r = await fuzzOne(d, o)
    out.push(r)
    process.stdout.write(
      `listener ${d.name}: ${r.inputs} inputs in ${r.seconds.toFixed(0)} s (${Math.round(r.perSecond)}/s): ${r.crashes} crashes, ${r.hangs} hangs, ${r.errors} errors\n`,
    )
  }
  return out
}
