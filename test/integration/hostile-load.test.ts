/**
 * Availability under hostile load (issue 13, items 1–6), each over a real server and real sockets: what a client
 * that never logs in may cost in memory and descriptors, how reassembly scales with tiny writes, the login rate
 * on every listener, the legacy gateways' login timeout and the per-address caps.
 */
import { test, type TestContext } from 'node:test'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { spawnServer } from '../../scripts/spawn-server.js'
import assert from 'node:assert/strict'
import net from 'node:net'
import { WebSocket } from 'ws'
import { encode } from '../../src/protocols/native/codec.js'
import { ErrorNumbers } from '../../src/core/errors.js'
import { encodeString } from '../../src/protocols/p002/codec.js'
import { encodeClient } from '../../src/protocols/p004/codec.js'
import { NativeClient, partialSendHeader, registered } from '../helpers/native-client.js'
import { startTestServer } from '../helpers/server.js'
import { until } from '../helpers/wait.js'
import v8 from 'node:v8'
import vm from 'node:vm'

v8.setFlagsFromString('--expose-gc')
/** A full collection, so that what is measured is what is still held. */
const gc = vm.runInNewContext('gc') as () => void

/**
 * Bytes of array buffers still referenced. gc() returns before the backing stores of the buffers it found dead are
 * freed: V8 frees them on a background thread (--concurrent-array-buffer-sweeping), and process.memoryUsage() counts
 * them until then. So a reading straight after one gc() may count megabytes of socket read chunks that nothing
 * references any more, the more on a loaded machine (CI runs two files at once on two cores): seen on Node 24
 * (7.7 MB, 14 MB at worst, where the next reading found 0.2 MB) and on Node 20. The next full collection first
 * finishes the previous sweep, so collect and read until two readings agree: what is still referenced stays however
 * often we collect.
 */
async function arrayBuffersHeld(): Promise<number> {
  let last = Number.NaN
  for (let i = 0; i < 20; i++) {
    gc()
    const now = process.memoryUsage().arrayBuffers
    if (Math.abs(now - last) < 64 * 1024) return now
    last = now
    await new Promise((resolve) => setImmediate(resolve))
  }
  return last
}

/** A raw socket that records whether the server closed it. */
async function rawConnect(port: number): Promise<{ socket: net.Socket; closed: () => boolean; data: () => Buffer }> {
  const socket = net.connect(port, '127.0.0.1')
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  let closed = false
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  socket.on('close', () => (closed = true))
  socket.on('error', () => undefined)
  return { socket, closed: () => closed, data: () => Buffer.concat(chunks) }
}

async function http(
  base: string,
  method: string,
  path: string,
  body?: string | Buffer,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any }> {
  const init: RequestInit = { method, headers: { 'content-type': 'application/json', ...headers } }
  if (body !== undefined) init.body = body
  const res = await fetch(base + path, init)
  const text = await res.text()
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) }
}

// ---------------------------------------------------------------- 1. before login

test('before login a native connection may only send a small frame: a larger one is refused naming maxPreLoginFrameBytes, and 200 partial frames cost the server next to nothing', async (t) => {
  const { port } = await startTestServer(t, { maxPreLoginFrameBytes: 2048, maxUnauthenticatedPerAddress: 1000 })
  // One: the error names the limit, then the connection is closed.
  const one = await NativeClient.connect(port, t)
  one.writeRaw(Buffer.concat([partialSendHeader(64 * 1024), Buffer.alloc(1000)]))
  const err = await one.next('ERROR')
  assert.equal(err.code, ErrorNumbers.SB_ERR_TOO_LARGE)
  assert.equal(err.limit, 'maxPreLoginFrameBytes')
  assert.match(err.message, /maxPreLoginFrameBytes \(2048\)/)
  await one.closed

  // REGISTER still fits, and once logged in the connection takes frames up to maxFrameBytes.
  const alice = await registered(t, port, 'alice')
  const big = await alice.expect(
    { type: 'SEND', msgId: 1, to: { kind: 'all' }, kind: 0, flags: 0, ttlMs: 0, notBefore: 0, body: Buffer.alloc(60_000, 97) },
    'ACCEPTED',
  )
  assert.equal(big.msgId, 1)
})

test('200 strangers each holding a partial frame before login cost the server next to nothing (measured)', async (t) => {
  // A login timeout far beyond the test: only the refusal at the header may close them.
  const { server, port } = await startTestServer(t, {
    maxPreLoginFrameBytes: 2048,
    maxUnauthenticatedPerAddress: 1000,
    loginTimeout: 600_000,
  })
  // 200 strangers each send 128 KiB of a frame that announces 1 MiB and never ends it.
  const N = 200
  const PART = 128 * 1024
  const before = await arrayBuffersHeld()
  const conns = await Promise.all(Array.from({ length: N }, () => rawConnect(port)))
  // One body buffer for every client, so that what the test process holds on the client side does not grow with N.
  const header = partialSendHeader(1024 * 1024)
  const body = Buffer.alloc(PART - 9, 1)
  for (const c of conns) {
    c.socket.write(header)
    c.socket.write(body)
  }
  // Each is refused at its header and closed; before, each was held open with its partial frame in memory. Both
  // ends closed, so that what is measured is what the server still holds, not sockets on their way out.
  await until(
    'every stranger closed, on both ends',
    () => conns.every((c) => c.closed()) && server.connections().native === 0,
    10_000,
  ).catch(() => undefined)
  const grown = (await arrayBuffersHeld()) - before
  const closed = conns.filter((c) => c.closed()).length
  t.diagnostic(
    `${closed}/${N} closed; array buffers grew ${(grown / 1048576).toFixed(1)} MiB for ${((N * PART) / 1048576).toFixed(0)} MiB sent`,
  )
  for (const c of conns) c.socket.destroy()
  assert.ok(grown < (N * PART) / 4, `the server held ${grown} bytes of partial frames (bound: a quarter of what was sent)`)
  assert.equal(closed, N, 'every connection with an oversized frame before login is closed')
})

test('before login a WebSocket message larger than maxPreLoginFrameBytes closes the socket (1009) before it is buffered; after login large frames pass', async (t) => {
  const { server } = await startTestServer(t, { httpPort: 0, maxPreLoginFrameBytes: 2048 })
  const url = `ws://127.0.0.1:${server.port('http')}/v1/ws`
  const ws = new WebSocket(url)
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject))
  const code = new Promise<number>((resolve) => ws.once('close', (c) => resolve(c)))
  ws.send(Buffer.concat([partialSendHeader(64 * 1024), Buffer.alloc(32 * 1024)]))
  assert.equal(await code, 1009, 'message too big')

  // A client that logs in first may then send a 60 kB message in one WebSocket message.
  const ok = new WebSocket(url)
  await new Promise((resolve, reject) => ok.once('open', resolve).once('error', reject))
  const frames: Buffer[] = []
  ok.on('message', (d: Buffer) => frames.push(d))
  ok.send(encode({ type: 'REGISTER', corr: 1, version: 1, flags: 0, name: 'wsbig' }))
  await until('WELCOME', () => frames.some((f) => f[4] === 0x41))
  ok.send(
    encode({
      type: 'SEND',
      corr: 2,
      msgId: 1,
      to: { kind: 'all' },
      kind: 0,
      flags: 0,
      ttlMs: 0,
      notBefore: 0,
      body: Buffer.alloc(60_000, 98),
    }),
  )
  await until('ACCEPTED', () => frames.some((f) => f[4] === 0x43))
  ok.close()
})

test('an HTTP request body without a valid bearer token is refused above maxPreAuthBodyBytes (413 naming it); with one it may be as large as bodyLimit', async (t) => {
  const { server } = await startTestServer(t, { httpPort: 0, maxPreAuthBodyBytes: 2048 })
  const base = `http://127.0.0.1:${server.port('http')}`
  const big = JSON.stringify({ name: 'x'.repeat(10_000) })
  const r1 = await http(base, 'POST', '/v1/register', big)
  assert.equal(r1.status, 413)
  assert.equal(r1.body.limit, 'maxPreAuthBodyBytes')
  assert.match(r1.body.detail, /maxPreAuthBodyBytes \(2048\)/)
  // Chunked, no length announced: cut as it streams.
  const chunked = await new Promise<number>((resolve, reject) => {
    const req = net.connect(server.port('http'), '127.0.0.1', () => {
      req.write('POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n')
      for (let i = 0; i < 8; i++) req.write(`400\r\n${'a'.repeat(1024)}\r\n`)
    })
    let got = ''
    req.on('data', (d: Buffer) => {
      got += d.toString()
      const m = /^HTTP\/1\.1 (\d+)/.exec(got)
      if (m !== null) {
        req.destroy()
        resolve(Number(m[1]))
      }
    })
    req.on('error', reject)
  })
  assert.equal(chunked, 413)
  // A large body announced and never sent: the 413 comes at once, and the server closes the connection (the body
  // stays unread; an open socket per refusal would let a stranger fill its per-address cap).
  const announced = await new Promise<{ status: number; closedByServer: boolean }>((resolve, reject) => {
    const req = net.connect(server.port('http'), '127.0.0.1', () => {
      req.write('POST /v1/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{"na')
    })
    let got = ''
    req.on('data', (d: Buffer) => (got += d.toString()))
    req.on('end', () => resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(got)?.[1] ?? 0), closedByServer: true }))
    req.on('error', reject)
    setTimeout(() => {
      resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(got)?.[1] ?? 0), closedByServer: false })
      req.destroy()
    }, 5000).unref()
  })
  assert.deepEqual(announced, { status: 413, closedByServer: true })
  // A wrong token is refused before the body is read.
  const r2 = await http(base, 'POST', '/v1/messages', JSON.stringify({ to: 'ALL', text: 'y'.repeat(10_000) }), {
    authorization: 'Bearer 1.wrongwrongwrong',
  })
  assert.equal(r2.status, 401)
  // A registered caller sends 10 kB.
  const reg = await http(base, 'POST', '/v1/register', JSON.stringify({ name: 'poster' }))
  assert.equal(reg.status, 201)
  const r3 = await http(base, 'POST', '/v1/messages', JSON.stringify({ to: 'ALL', text: 'y'.repeat(10_000) }), {
    authorization: `Bearer ${reg.body.token as string}`,
  })
  assert.ok(r3.status < 300, `status ${r3.status}: ${JSON.stringify(r3.body)}`)
})

test('connections not logged in are capped per address (maxUnauthenticatedPerAddress), with an error naming the cap; a login frees a place', async (t) => {
  const { port } = await startTestServer(t, { maxUnauthenticatedPerAddress: 5 })
  const waiting = await Promise.all(Array.from({ length: 5 }, () => NativeClient.connect(port, t)))
  const sixth = await NativeClient.connect(port, t)
  const err = await sixth.next('ERROR')
  assert.equal(err.limit, 'maxUnauthenticatedPerAddress')
  assert.equal(err.code, ErrorNumbers.SB_ERR_LIMIT)
  await sixth.closed
  await waiting[0]!.register('first')
  const seventh = await NativeClient.connect(port, t)
  await seventh.register('second') // admitted: only four are waiting now
})

// ---------------------------------------------------------------- 2. reassembly

/** CPU seconds (user + system) a process has used, from /proc (Linux). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/** Listening lines of a spawned server, by listener name. */
function listenersOf(out: string): Record<string, number> {
  const ports: Record<string, number> = {}
  for (const m of out.matchAll(/^(\S+)\s+listening on (?:http:\/\/)?[^\s:]+:(\d+)$/gm)) ports[m[1]!] = Number(m[2])
  return ports
}

async function spawned(
  t: TestContext,
  args: string[],
  wrapper?: string[],
): Promise<{ pid: number; port: number; ports: () => Record<string, number> }> {
  const dir = mkdtempSync(join(tmpdir(), 'sb-hostile-'))
  let out = ''
  const s = await spawnServer(['--port', '0', '--data-dir', dir, '--log-level', 'warn', ...args], {
    onStdout: (d) => (out += d.toString()),
    ...(wrapper !== undefined && { wrapper }),
    timeoutMs: 60_000, // a cold start under a loaded machine
  })
  t.after(async () => {
    s.child.kill('SIGKILL')
    await s.exited
    rmSync(dir, { recursive: true, force: true })
  })
  return { pid: s.child.pid!, port: s.port, ports: () => listenersOf(out) }
}

test(
  'reassembly is linear: four clients writing 4 MB frames 4 KiB at a time cost the server little CPU (measured)',
  { skip: process.platform !== 'linux' },
  async (t) => {
    const SIZE = 4 * 1024 * 1024
    const { pid, port } = await spawned(t, [
      '--http-port',
      '-1',
      '--max-frame-bytes',
      String(SIZE + 1024),
      '--max-text-bytes',
      String(SIZE),
    ])
    const clients = await Promise.all([0, 1, 2, 3].map((i) => registered(t, port, `dribble${i}`)))
    const before = cpuSeconds(pid)
    await Promise.all(
      clients.map(async (c) => {
        const frame = encode({
          type: 'SEND',
          corr: 99,
          msgId: 1,
          to: { kind: 'name', name: 'nobody-at-all' },
          kind: 0,
          flags: 0,
          ttlMs: 0,
          notBefore: 0,
          body: Buffer.alloc(SIZE, 97),
        })
        // Small writes, each given time to arrive alone: the server reads the frame in about 1,000 pieces.
        for (let o = 0; o < frame.length; o += 4096) {
          c.socket.write(frame.subarray(o, o + 4096))
          await new Promise((r) => setTimeout(r, 1))
        }
        // The whole frame arrived and was decoded: it is answered (there is no such recipient).
        const answer = await c.next((f) => f.corr === 99, 30_000)
        assert.equal(answer.type, 'ERROR')
      }),
    )
    const used = cpuSeconds(pid) - before
    t.diagnostic(`server CPU for 4 × ${SIZE} bytes in 4 KiB writes: ${used.toFixed(2)} s`)
    assert.ok(
      used < 1.5,
      `the server used ${used.toFixed(2)} s of CPU (bound 1.5 s; a copy of the partial frame per read costs several)`,
    )
  },
)

// ---------------------------------------------------------------- 4. legacy gateways, per-address caps, descriptors

test('legacy gateway connections that never send a name are closed after the login timeout, as native ones are', async (t) => {
  const { server, port } = await startTestServer(t, { loginTimeout: 400, p001Port: 0, p002Port: 0, p004Port: 0 })
  const conns = await Promise.all([port, server.port('p001'), server.port('p002'), server.port('p004')].map((p) => rawConnect(p)))
  await until('every silent connection closed', () => conns.every((c) => c.closed()), 5000)
  // One that names itself in time stays.
  const named = await rawConnect(server.port('p004'))
  named.socket.write(encodeClient({ kind: 'login', name: 'stays', utcOffsetSeconds: null }))
  await until('named', () => server.broker.sessionOf !== undefined && server.connections().p004 === 1)
  await until('the 004 user online', () => [...server.broker.localSessions()].some((s) => s.user.name === 'stays'))
  const silent = await rawConnect(server.port('p002'))
  await until('the silent 002 connection closed', () => silent.closed(), 5000)
  assert.equal(named.closed(), false, 'a named connection is not closed by the login timeout')
})

test('connections per address are capped on every listener together (maxConnectionsPerAddress), each refusal said as the protocol can', async (t) => {
  const { server, port } = await startTestServer(t, { maxConnectionsPerAddress: 4, httpPort: 0, p002Port: 0, p004Port: 0 })
  const held = [await registered(t, port, 'n1'), await registered(t, port, 'n2')]
  const g1 = await rawConnect(server.port('p004'))
  g1.socket.write(encodeClient({ kind: 'login', name: 'g1', utcOffsetSeconds: null }))
  const g2 = await rawConnect(server.port('p002'))
  g2.socket.write(encodeString('g2'))
  await until('four online', () => [...server.broker.localSessions()].length === 4)
  // The fifth: native says why, a legacy gateway just closes, HTTP answers 503 naming the limit.
  const fifth = await NativeClient.connect(port, t)
  const err = await fifth.next('ERROR')
  assert.equal(err.limit, 'maxConnectionsPerAddress')
  const g3 = await rawConnect(server.port('p004'))
  await until('the fifth 004 connection closed', () => g3.closed())
  const r = await fetch(`http://127.0.0.1:${server.port('http')}/healthz`).then(
    async (res) => ({ status: res.status, body: (await res.json()) as { limit?: string } }),
    () => ({ status: 0, body: {} as { limit?: string } }),
  )
  assert.equal(r.status, 503)
  assert.equal(r.body.limit, 'maxConnectionsPerAddress')
  assert.ok(server.guard.refused.maxConnectionsPerAddress >= 3)
  // One leaves: a place is free again.
  held[0]!.destroy()
  await until('a place free', () => server.guard.openFrom('127.0.0.1').all < 4)
  await registered(t, port, 'n3')
})

test(
  'near the descriptor limit new gateway connections are refused first (fdReserve): native clients and /healthz keep working, and /metrics counts the refusals',
  { skip: process.platform !== 'linux' },
  async (t) => {
    const LIMIT = 256
    const s = await spawned(
      t,
      [
        '--http-port',
        '0',
        '--p004-port',
        '0',
        '--fd-reserve',
        '64',
        '--max-connections-per-address',
        '1000',
        '--max-unauthenticated-per-address',
        '1000',
      ],
      ['prlimit', `--nofile=${LIMIT}`, '--'],
    )
    await until('the listening lines', () => s.ports().p004 !== undefined && s.ports().http !== undefined)
    const { p004, http: httpPort } = s.ports() as { p004: number; http: number }
    // A flood of 004 connections that never name themselves: more than the process has descriptors.
    const flood: { closed: () => boolean; socket: net.Socket }[] = []
    for (let i = 0; i < LIMIT; i++) flood.push(await rawConnect(p004))
    await until('some refused', () => flood.some((c) => c.closed()), 5000).catch(() => undefined)
    const refused = flood.filter((c) => c.closed()).length
    t.diagnostic(`${refused} of ${LIMIT} flood connections refused`)
    // The native and HTTP listeners still serve.
    const alice = await registered(t, s.port, 'alice')
    await alice.expect({ type: 'PING' }, 'PONG')
    const health = await fetch(`http://127.0.0.1:${httpPort}/healthz`, { signal: AbortSignal.timeout(3000) }).then(
      (r) => r.status,
      () => 0,
    )
    assert.equal(health, 200, '/healthz answers')
    const metrics = await fetch(`http://127.0.0.1:${httpPort}/metrics`, { signal: AbortSignal.timeout(3000) }).then((r) =>
      r.text(),
    )
    const m = /switchboard_connections_refused_total\{limit="fdReserve"\} (\d+)/.exec(metrics)
    assert.ok(m !== null && Number(m[1]) >= 1, 'refusals counted in /metrics')
    assert.ok(refused >= 1)
    for (const c of flood) c.socket.destroy()
  },
)

// ---------------------------------------------------------------- 5. one login rate

test('logins and registrations share one rate per address on every listener (authRatePerSecond), and the refusal names it', async (t) => {
  const { server, port } = await startTestServer(t, { httpPort: 0, p004Port: 0, authRate: 1 })
  const c = await NativeClient.connect(port, t)
  const codes: string[] = []
  // A burst of twice the rate, then refused naming the limit (the store answers SB_ERR_AUTH until then).
  while (!codes.includes('authRatePerSecond') && codes.length < 25) {
    const f = await c.request({ type: 'LOGIN', version: 1, flags: 0, id: 0, name: 'nobody', token: 'wrong' })
    assert.equal(f.type, 'ERROR')
    if (f.type === 'ERROR') codes.push(f.limit === '' ? String(f.code) : f.limit)
  }
  assert.deepEqual(codes, [String(ErrorNumbers.SB_ERR_AUTH), String(ErrorNumbers.SB_ERR_AUTH), 'authRatePerSecond'])
  // The same address on HTTP: the same bucket.
  const r = await fetch(`http://127.0.0.1:${server.port('http')}/v1/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'viahttp' }),
  })
  assert.equal(r.status, 429)
  assert.equal(((await r.json()) as { limit: string }).limit, 'authRatePerSecond')
  // And REGISTER on native.
  const d = await NativeClient.connect(port, t)
  const e = await d.request({ type: 'REGISTER', version: 1, flags: 0, name: 'late' })
  assert.ok(e.type === 'ERROR' && e.limit === 'authRatePerSecond')
})

// ---------------------------------------------------------------- 3. idle polling sessions

test('idle HTTP polling sessions hold at most their eventBufferBytes each and the server-wide budget in all; drops are counted (measured)', async (t) => {
  const N = 50
  const PER = 256 * 1024
  const { server, port } = await startTestServer(t, {
    httpPort: 0,
    authRate: 1000,
    httpEventBufferBytes: PER,
    httpEventBudgetBytes: 4 * 1024 * 1024,
  })
  const base = `http://127.0.0.1:${server.port('http')}`
  const tokens: string[] = []
  for (let i = 0; i < N; i++) {
    const r = await http(base, 'POST', '/v1/register', JSON.stringify({ name: `idle${i}` }))
    assert.equal(r.status, 201)
    tokens.push(r.body.token as string)
  }
  const talker = await registered(t, port, 'talker')
  gc()
  const before = process.memoryUsage()
  // 100 room messages of 60 kB (text with two-byte characters), to sessions that never poll.
  const text = Buffer.from('é'.repeat(30_000))
  for (let i = 0; i < 100; i++)
    await talker.expect(
      { type: 'SEND', msgId: i + 1, to: { kind: 'all' }, kind: 0, flags: 0, ttlMs: 0, notBefore: 0, body: text },
      'ACCEPTED',
    )
  gc()
  const after = process.memoryUsage()
  const grown = after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers)
  t.diagnostic(
    `${N} idle sessions, 100 × 60 kB room messages: memory grew ${(grown / 1048576).toFixed(1)} MiB (per-session setting ${PER / 1024} KiB)`,
  )
  assert.ok(grown < (N * PER) / 2, `memory grew ${grown} bytes (bound: half of ${N} × eventBufferBytes)`)
  // The budget is a bound on what is held, and what it dropped is counted and told.
  const metrics = await fetch(`${base}/metrics`).then((r) => r.text())
  const held = Number(/^switchboard_http_event_buffer_bytes (\d+)/m.exec(metrics)?.[1])
  const dropped = Number(/^switchboard_http_events_dropped_total (\d+)/m.exec(metrics)?.[1])
  assert.ok(held <= 4 * 1024 * 1024, `held ${held}`)
  assert.ok(dropped > 0, 'drops counted')
  const ev = await http(base, 'GET', '/v1/events?wait=0&max=1000', undefined, { authorization: `Bearer ${tokens[0]!}` })
  assert.equal(ev.status, 200)
  assert.ok(ev.body.dropped > 0, 'the client is told how many it missed')
  assert.ok(ev.body.events.length > 0 && ev.body.events.length < 100)
  assert.equal(ev.body.events.at(-1).data.text, text.toString())
})

// ---------------------------------------------------------------- 6. room chat from many gateway clients

/** The slow-disk shim (test/helpers/slow-fsync.c), built once; undefined where there is no C compiler. */
function slowFsyncLibrary(t: TestContext): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'sb-slowfsync-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const so = join(dir, 'slow-fsync.so')
  const src = fileURLToPath(new URL('../helpers/slow-fsync.c', import.meta.url))
  const cc = spawnSync('cc', ['-shared', '-fPIC', '-O2', '-o', so, src, '-ldl'], { encoding: 'utf8' })
  return cc.status === 0 ? so : undefined
}

test(
  '100 004 clients chatting in the room and cut all at once, on a disk whose flush takes 40 ms: a native round trip stays short (measured)',
  { skip: process.platform !== 'linux' },
  async (t) => {
    const so = slowFsyncLibrary(t)
    if (so === undefined) {
      assert.ok(process.env.CI !== 'true', 'CI has a C compiler (scripts/install-toolchains.sh)')
      t.skip('no C compiler to build the slow-disk shim')
      return
    }
    const N = 100
    // Every fsync of the server sleeps 40 ms first. Before session ends went through the group commit, each of the
    // 100 ends was a transaction of its own on the event loop: 100 × 40 ms held every other client for 4 s (the
    // issue's 1.1 s was the same with ~10 ms). The bound leaves room for a machine busy with other tests: the crowd's
    // presence notices and logins cost CPU (up to 1.5 s of delay was seen on a 2-core machine at load 9).
    const s = await spawned(
      t,
      [
        '--http-port',
        '-1',
        '--p004-port',
        '0',
        '--auth-rate',
        '100000',
        '--max-unauthenticated-per-address',
        '100000',
        '--max-connections-per-address',
        '100000',
      ],
      ['env', `LD_PRELOAD=${so}`, 'SLOW_FSYNC_MS=40'],
    )
    await until('the 004 listener', () => s.ports().p004 !== undefined)
    const p004 = s.ports().p004!
    const alice = await registered(t, s.port, 'alice')
    const crowd: { socket: net.Socket; closed: () => boolean; data: () => Buffer }[] = []
    const join004 = async (i: number): Promise<void> => {
      const c = await rawConnect(p004)
      c.socket.write(encodeClient({ kind: 'login', name: `g${i}`, utcOffsetSeconds: 0 }))
      crowd[i] = c
    }
    await Promise.all(Array.from({ length: N }, (_, i) => join004(i)))
    // Logged in: each has heard something from the room (its own arrival or another's).
    await until('the crowd logged in', () => crowd.every((c) => c.data().length > 0), 30_000)
    t.after(() => {
      for (const c of crowd) c.socket.destroy()
    })

    // A native client pings every 20 ms while the crowd chats, is cut all at once, logs in again, and is cut again.
    let pinging = true
    const rtts: number[] = []
    const pinger = (async () => {
      while (pinging) {
        const t0 = performance.now()
        await alice.expect({ type: 'PING' }, 'PONG', 30_000)
        rtts.push(performance.now() - t0)
        await new Promise((r) => setTimeout(r, 20))
      }
    })()
    const line = encodeClient({ kind: 'message', text: 'hello everyone, this is a line of room chat' } as never)
    for (let round = 0; round < 2; round++) {
      for (let k = 0; k < 5; k++) {
        for (const c of crowd) if (!c.closed()) c.socket.write(line)
        await new Promise((r) => setTimeout(r, 100))
      }
      for (const c of crowd) c.socket.destroy()
      await new Promise((r) => setTimeout(r, 500))
      await Promise.all(Array.from({ length: N }, (_, i) => join004(i)))
      await new Promise((r) => setTimeout(r, 500))
    }
    pinging = false
    await pinger
    rtts.sort((a, b) => a - b)
    const max = rtts.at(-1)!
    t.diagnostic(
      `native PING round trip over ${rtts.length} pings: p50 ${rtts[rtts.length >> 1]!.toFixed(1)} ms, max ${max.toFixed(1)} ms`,
    )
    assert.ok(rtts.length >= 20, `only ${rtts.length} pings in ~3 s`)
    assert.ok(max < 2500, `a native PING waited ${max.toFixed(0)} ms behind the crowd (bound 2.5 s; 100 ends × 40 ms is 4 s)`)
  },
)
