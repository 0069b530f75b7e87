/**
 * Push over HTTP: server-sent events, the native protocol over WebSocket, and a REST user and a native
 * TCP user talking to each other through one broker.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import WebSocket from 'ws'
import { encode, FrameReader } from '../../src/protocols/native/codec.js'
import { PROTOCOL_VERSION, type Frame } from '../../src/protocols/native/frames.js'
import { listenNative } from '../../src/protocols/native/server.js'
import { nativeOptions, SseReader, startFixture } from './http-fixture.js'
import { until } from '../helpers/wait.js'

/** Collects decoded frames from chunks of a native byte stream. */
class Frames {
  readonly all: Frame[] = []
  private readonly reader = new FrameReader(16 * 1024 * 1024)
  private waiters: (() => void)[] = []
  feed(chunk: Buffer): void {
    for (const d of this.reader.push(chunk)) if (d.ok) this.all.push(d.frame)
    for (const w of this.waiters.splice(0)) w()
  }
  async next<T extends Frame['type']>(
    type: T,
    pred: (f: Extract<Frame, { type: T }>) => boolean = () => true,
    ms = 3000,
  ): Promise<Extract<Frame, { type: T }>> {
    const deadline = Date.now() + ms
    for (;;) {
      const i = this.all.findIndex((f) => f.type === type && pred(f as Extract<Frame, { type: T }>))
      if (i >= 0) return this.all.splice(i, 1)[0] as Extract<Frame, { type: T }>
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no ${type}; have ${this.all.map((f) => f.type).join(',')}`)
      await new Promise<void>((r) => {
        const t = setTimeout(r, left)
        this.waiters.push(() => {
          clearTimeout(t)
          r()
        })
      })
    }
  }
}

test('SSE with ?ack=auto: the server acknowledges what it writes to the stream; the sender gets 200, nothing comes again', async (t) => {
  const f = await startFixture(t)
  const a = await f.register('alice')
  const b = await f.register('bob')
  await f.api('POST', '/v1/messages', { to: 'bob', text: 'queued before the stream', msgId: 1, receipt: true }, a.token)

  const first = await SseReader.open(`${f.base}/v1/stream?ack=auto&token=${encodeURIComponent(b.token)}`)
  t.after(() => first.reader.close())
  assert.equal(first.status, 200)
  await first.reader.waitFor((e) => e.event === 'message' && e.data.text === 'queued before the stream')
  await f.api('POST', '/v1/messages', { to: 'bob', text: 'live', msgId: 2, receipt: true }, a.token)
  await first.reader.waitFor((e) => e.event === 'message' && e.data.text === 'live')

  // No POST /v1/ack: alice still gets 200 for both (not 300 "not yet").
  const got = new Map<number, number>()
  for (let i = 0; i < 20 && got.size < 2; i++) {
    const ev = await f.api('GET', '/v1/events?wait=1', undefined, a.token)
    for (const e of ev.body.events as { type: string; data: { msgId: number; status: number } }[])
      if (e.type === 'receipt' && e.data.status === 200) got.set(e.data.msgId, e.data.status)
  }
  assert.deepEqual([...got.keys()].sort(), [1, 2])

  // A new stream does not get them again: the first thing on it is what is sent after it opened.
  first.reader.close()
  for (let i = 0; i < 50 && f.broker.sessionOf(b.id) !== undefined; i++) await new Promise((r) => setTimeout(r, 20))
  const second = await SseReader.open(`${f.base}/v1/stream?ack=auto`, b.token)
  t.after(() => second.reader.close())
  await second.reader.waitFor((e) => e.event === 'ready')
  await f.api('POST', '/v1/messages', { to: 'bob', text: 'marker', msgId: 3 }, a.token)
  await second.reader.waitFor((e) => e.event === 'message' && e.data.text === 'marker')
  assert.deepEqual(
    second.reader.events.filter((e) => e.event === 'message').map((e) => e.data.text),
    ['marker'],
    'acknowledged messages are not pushed again',
  )

  // An unknown value is refused, not taken for manual.
  const bad = await SseReader.open(`${f.base}/v1/stream?ack=sometimes`, b.token)
  assert.equal(bad.status, 400)
  bad.reader.close()
})

test('SSE: a push session gets messages (id = seq), receipts and room messages; ack by REST with the same token', async (t) => {
  const f = await startFixture(t)
  const a = await f.register('alice')
  const b = await f.register('bob')
  await f.api('POST', '/v1/messages', { to: 'bob', text: 'waiting for you', msgId: 1, receipt: true }, a.token)

  const { status, reader, headers } = await SseReader.open(`${f.base}/v1/stream?token=${encodeURIComponent(b.token)}`)
  t.after(() => reader.close())
  assert.equal(status, 200)
  assert.match(headers.get('content-type') ?? '', /^text\/event-stream/)
  const ready = await reader.waitFor((e) => e.event === 'ready')
  assert.deepEqual({ id: ready.data.id, name: ready.data.name }, { id: b.id, name: 'bob' })
  assert.equal(f.broker.sessionOf(b.id)?.protocol, 'http-sse')
  assert.equal(f.broker.sessionOf(b.id)?.mode, 'push')

  // The message queued before the stream opened is pushed from the queue.
  const first = await reader.waitFor((e) => e.event === 'message' && e.data.text === 'waiting for you')
  assert.equal(first.id, String(first.data.seq))

  // A live one, and a room message (no id: not stored).
  await f.api('POST', '/v1/messages', { to: b.id, text: 'live', msgId: 2, receipt: true }, a.token)
  const live = await reader.waitFor((e) => e.event === 'message' && e.data.text === 'live')
  await f.api('POST', '/v1/messages', { to: 'ALL', text: 'room' }, a.token)
  const room = await reader.waitFor((e) => e.event === 'message' && e.data.text === 'room')
  assert.equal(room.id, undefined)

  // Acknowledge with the same token: it finds the stream's session, not a new one.
  const ack = await f.api('POST', '/v1/ack', { seqs: [first.data.seq, live.data.seq] }, b.token)
  assert.deepEqual(ack.body, { acked: [first.data.seq, live.data.seq], unknown: [] })
  assert.equal(f.broker.sessionOf(b.id)?.protocol, 'http-sse', 'the ack did not replace the stream')
  const polling = await f.api('GET', '/v1/events', undefined, b.token)
  assert.equal(polling.status, 409, 'a push session gets its events on the stream')

  // Alice (polling) gets the 200s.
  let statuses: number[] = []
  for (let i = 0; i < 20 && statuses.filter((s) => s === 200).length < 2; i++) {
    const ev = await f.api('GET', '/v1/events?wait=1', undefined, a.token)
    statuses = statuses.concat(
      ev.body.events
        .filter((e: { type: string }) => e.type === 'receipt')
        .map((e: { data: { status: number } }) => e.data.status),
    )
  }
  assert.equal(statuses.filter((s) => s === 200).length, 2, statuses.join(','))

  // A receipt for bob's own message shows up on bob's stream.
  await f.api('POST', '/v1/messages', { to: 'alice', text: 'ping', msgId: 9, receipt: true }, b.token)
  await f.api('GET', '/v1/messages?mode=take', undefined, a.token)
  const rcpt = await reader.waitFor((e) => e.event === 'receipt' && e.data.msgId === 9 && e.data.status === 200)
  assert.equal(rcpt.data.recipient, a.id)

  // Closing the stream ends the session.
  reader.close()
  await until("the stream's session to end", () => f.broker.sessionOf(b.id) === undefined)
})

test('SSE: no token is 401 problem+json; a replaced stream is told why', async (t) => {
  const f = await startFixture(t)
  const none = await SseReader.open(`${f.base}/v1/stream`)
  assert.equal(none.status, 401)
  const b = await f.register('bob')
  const s = await SseReader.open(`${f.base}/v1/stream`, b.token)
  t.after(() => s.reader.close())
  await s.reader.waitFor((e) => e.event === 'ready')
  const s2 = await SseReader.open(`${f.base}/v1/stream`, b.token)
  t.after(() => s2.reader.close())
  await s2.reader.waitFor((e) => e.event === 'ready')
  const closing = await s.reader.waitFor((e) => e.event === 'closing')
  assert.equal(closing.data.reason, 'replaced')
})

test('WebSocket carries native frames: register, send to a REST user, receive a push, errors close with 1003/1008', async (t) => {
  const f = await startFixture(t)
  const rest = await f.register('resty')
  const url = `ws://127.0.0.1:${f.http.address.port}/v1/ws`
  const ws = new WebSocket(url)
  t.after(() => ws.terminate())
  const frames = new Frames()
  ws.on('message', (d: Buffer) => frames.feed(d))
  await new Promise((r, j) => ws.once('open', r).once('error', j))

  // A REGISTER split across two WebSocket messages: each message is a chunk of the stream.
  const reg = encode({ type: 'REGISTER', corr: 1, version: PROTOCOL_VERSION, flags: 0, name: 'wsuser' })
  ws.send(reg.subarray(0, 5))
  ws.send(reg.subarray(5))
  const welcome = await frames.next('WELCOME')
  assert.equal(welcome.corr, 1)
  assert.equal(welcome.name, 'wsuser')
  assert.ok(welcome.token.length > 0)
  assert.equal(f.broker.sessionOf(welcome.id)?.protocol, 'ws')

  ws.send(
    encode({
      type: 'SEND',
      corr: 2,
      msgId: 5,
      to: { kind: 'name', name: 'resty' },
      kind: 0,
      flags: 1,
      ttlMs: 0,
      notBefore: 0,
      body: Buffer.from('from ws'),
    }),
  )
  const acc = await frames.next('ACCEPTED', (x) => x.corr === 2)
  assert.equal(acc.msgId, 5)
  const polled = await f.api('GET', '/v1/messages', undefined, rest.token)
  assert.equal(polled.body.messages[0].text, 'from ws')
  assert.equal(polled.body.messages[0].fromName, 'wsuser')
  const rc = await frames.next('RECEIPT', (x) => x.msgId === 5 && x.status === 200)
  assert.equal(rc.recipient, rest.id)

  await f.api('POST', '/v1/messages', { to: 'wsuser', text: 'from rest' }, rest.token)
  const del = await frames.next('DELIVER')
  assert.equal(del.msg.body.toString(), 'from rest')
  assert.equal(del.msg.fromName, 'resty')

  // A text message is not part of the protocol.
  const closed = new Promise<number>((r) => ws.once('close', (code: number) => r(code)))
  ws.send('hello')
  assert.equal(await closed, 1003)
  await until('the session to end with the socket', () => f.broker.sessionOf(welcome.id) === undefined)

  // Malformed bytes: an ERROR frame, CLOSING, then close 1008.
  const ws2 = new WebSocket(url)
  t.after(() => ws2.terminate())
  const frames2 = new Frames()
  ws2.on('message', (d: Buffer) => frames2.feed(d))
  await new Promise((r, j) => ws2.once('open', r).once('error', j))
  const closed2 = new Promise<number>((r) => ws2.once('close', (code: number) => r(code)))
  ws2.send(Buffer.from([0, 0, 0, 5, 0x7e, 0, 0, 0, 0]))
  assert.equal(await closed2, 1008)
  assert.equal((await frames2.next('CLOSING')).reason, 'error')
})

test('a message over the WebSocket size limit closes with 1009', async (t) => {
  const f = await startFixture(t, { http: { nativeOptions: { ...nativeOptions, maxFrameBytes: 1024 } } })
  const ws = new WebSocket(`ws://127.0.0.1:${f.http.address.port}/v1/ws`)
  t.after(() => ws.terminate())
  await new Promise((r, j) => ws.once('open', r).once('error', j))
  const closed = new Promise<number>((r) => ws.once('close', (code: number) => r(code)))
  ws.send(Buffer.alloc(1024 + 64 * 1024 + 1))
  assert.equal(await closed, 1009)
})

test('a REST user and a native TCP user talk to each other', async (t) => {
  const f = await startFixture(t)
  const tcp = await listenNative(f.broker, { ...nativeOptions, host: '127.0.0.1', port: 0 })
  t.after(() => tcp.close())
  const sock = net.connect(tcp.port, '127.0.0.1')
  t.after(() => sock.destroy())
  const frames = new Frames()
  sock.on('data', (d) => frames.feed(d))
  await new Promise((r) => sock.once('connect', r))
  sock.write(encode({ type: 'REGISTER', corr: 1, version: PROTOCOL_VERSION, flags: 0, name: 'tcpuser' }))
  const welcome = await frames.next('WELCOME')

  const rest = await f.register('webuser')
  const who = await f.api('GET', '/v1/who', undefined, rest.token)
  assert.deepEqual(
    who.body.users.map((u: { name: string; protocol: string }) => [u.name, u.protocol]),
    [
      ['tcpuser', 'native'],
      ['webuser', 'http'],
    ],
  )

  const sent = await f.api('POST', '/v1/messages', { to: welcome.id, text: 'hi tcp', msgId: 3, receipt: true }, rest.token)
  assert.equal(sent.body.status, 'queued')
  const d = await frames.next('DELIVER')
  assert.equal(d.msg.body.toString(), 'hi tcp')
  assert.equal(d.msg.from, rest.id)
  // The 200 receipt comes once the TCP user acknowledges.
  sock.write(encode({ type: 'ACK', corr: 2, seq: d.msg.seq }))
  const statuses = await until('the 200 receipt', async () => {
    const got: number[] = (await f.api('GET', '/v1/receipts/3', undefined, rest.token)).body.receipts.map(
      (r: { status: number }) => r.status,
    )
    return got.includes(200) && got
  })
  assert.deepEqual(statuses, [200])

  sock.write(
    encode({
      type: 'SEND',
      corr: 3,
      msgId: 11,
      to: { kind: 'name', name: 'webuser' },
      kind: 0,
      flags: 0,
      ttlMs: 0,
      notBefore: 0,
      body: Buffer.from('hi web'),
    }),
  )
  await frames.next('ACCEPTED', (x) => x.corr === 3)
  const got = await f.api('GET', '/v1/messages?wait=5', undefined, rest.token)
  assert.equal(got.body.messages[0].text, 'hi web')
  assert.equal(got.body.messages[0].fromName, 'tcpuser')

  // One session per user: the TCP user's token used over REST replaces the TCP session.
  const asRest = await f.api('POST', '/v1/login', { id: welcome.id, token: welcome.token })
  assert.equal(asRest.status, 200)
  const closing = await frames.next('CLOSING')
  assert.equal(closing.reason, 'replaced')
  assert.equal(f.broker.sessionOf(welcome.id)?.protocol, 'http')
})

test('SSE: a client that goes away while its login is under way leaves no session behind', async (t) => {
  // The stream's 'close' listener was attached only after the login resolved; a client gone by then was never
  // detached, and the stream's heartbeat kept refreshing lastSeen, so the user stayed online for good.
  const f = await startFixture(t)
  const u = await f.register('ann')
  const w = await f.register('watcher')
  const watcher = await SseReader.open(`${f.base}/v1/stream`, w.token)
  t.after(() => watcher.reader.close())
  await watcher.reader.waitFor((e) => e.event === 'ready')
  assert.deepEqual((await f.api('POST', '/v1/presence', { watch: true }, w.token)).body, { watch: true })
  // A store with a round trip (PostgreSQL): ann's login waits in userById until the test lets it go on.
  const userById = f.store.userById.bind(f.store)
  let entered!: () => void
  const inLogin = new Promise<void>((r) => (entered = r))
  let release!: () => void
  const gate = new Promise<void>((r) => (release = r))
  f.store.userById = async (id: number) => {
    if (id === u.id) {
      entered()
      await gate
    }
    return userById(id)
  }
  t.after(() => {
    f.store.userById = userById
  })
  const connections = (): Promise<number> =>
    new Promise((resolve, reject) => f.http.server.server.getConnections((err, n) => (err ? reject(err) : resolve(n))))
  const before = await connections()
  const req = http.get(new URL(`${f.base}/v1/stream?token=${encodeURIComponent(u.token)}`))
  req.on('error', () => {})
  await inLogin
  req.destroy()
  await until('the server to see the client gone', async () => (await connections()) < before + 1)
  release()
  // The login completes after the client has gone: ann comes online, and must go offline again at once.
  const presence = (online: boolean) => (e: { event: string; data: any }) =>
    e.event === 'presence' && e.data.id === u.id && e.data.online === online
  await watcher.reader.waitFor(presence(true))
  await watcher.reader.waitFor(presence(false))
  assert.equal(f.broker.sessionOf(u.id), undefined, 'the user is offline once its only stream is gone')
})
