/**
 * The TypeScript SDK against a real server (startServer on port 0, SQLite in a temp dir): receipts both ways,
 * offline store-and-forward, reconnect across a server restart with resend and dedupe, async iteration,
 * poll mode, errors with their codes, the credential file, and the WebSocket transport.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { WebSocket } from 'ws'
import { startTestServer } from '../helpers/server.js'
import { elapse, until } from '../helpers/wait.js'
import {
  FileCredentialStore,
  SwitchboardClient,
  SwitchboardError,
  fileSource,
  downloadToFile,
  type ReceiptEvent,
  type ReconnectingEvent,
  type WebSocketConstructor,
} from '../../src/client/index.js'
import { client, inbox } from '../helpers/sdk.js'

test('two clients exchange messages both ways with delivered receipts', async (t) => {
  const { port } = await startTestServer(t)
  const alice = await client(t, { port, name: 'alice' })
  const bob = await client(t, { port, name: 'bob' })
  const aliceGot = inbox(alice)
  const bobGot = inbox(bob)

  const r1 = await alice.send('bob', 'hello bob')
  assert.equal(r1.status, 200)
  assert.equal(r1.receipt?.statusName, 'delivered')
  assert.equal(r1.receipt?.recipientName, 'bob')
  assert.equal(r1.accepted, 'queued')
  assert.deepEqual(
    bobGot.map((m) => [m.fromName, m.text, m.kind]),
    [['alice', 'hello bob', 'text']],
  )
  assert.ok(bobGot[0]!.seq > 0 && bobGot[0]!.msgId === r1.msgId)

  const r2 = await bob.send('alice', 'hi alice')
  assert.equal(r2.status, 200)
  assert.equal(aliceGot[0]?.text, 'hi alice')
  assert.notEqual(r1.msgId, (await alice.send('bob', 'again')).msgId, 'msgIds are unique per client')

  // The room: no receipt, settles on ACCEPTED.
  const room = await alice.send('ALL', 'hello room')
  assert.equal(room.accepted, 'delivered')
  assert.equal(room.recipients, 1)
  await until('room message', () => bobGot.find((m) => m.text === 'hello room'))

  // onAccepted: the server took it (ACCEPTED) before the receipt settles the send.
  const order: string[] = []
  const r3 = await alice
    .send('bob', 'ticks', { onAccepted: (a) => order.push(`accepted ${a.accepted ?? '?'} ${a.seq > 0}`) })
    .then((r) => (order.push(`settled ${r.status ?? '?'}`), r))
  assert.deepEqual(order, ['accepted queued true', 'settled 200'])
  assert.equal(r3.accepted, 'queued')

  // Without a receipt the send settles with the ACCEPTED status.
  const noReceipt = await alice.send('bob', 'fire and forget', { receipt: false })
  assert.equal(noReceipt.accepted, 'queued')
  assert.equal(noReceipt.receipt, undefined)
})

test('a message to an offline user is stored (202), then delivered at login (200)', async (t) => {
  const { port } = await startTestServer(t)
  const alice = await client(t, { port, name: 'alice' })
  const carol1 = await SwitchboardClient.connect({ port, name: 'carol' })
  const token = carol1.token
  const carolId = carol1.id
  await carol1.close()

  const receipts: ReceiptEvent[] = []
  alice.on('receipt', (r) => receipts.push(r))
  const r = await alice.send('carol', 'while you were out')
  assert.equal(r.status, 202)
  assert.equal(r.receipt?.statusName, 'stored')

  const carol = await client(t, { port, name: 'carol', id: carolId, token })
  assert.equal(carol.id, carolId)
  const got = inbox(carol) // attached after connect(): messages that came with the login are held for it
  await until('stored message', () => got[0])
  assert.equal(got[0]!.text, 'while you were out')
  await until('200 receipt', () => receipts.find((x) => x.msgId === r.msgId && x.status === 200))
})

test('reconnect after a server restart: resumes, gets queued messages, resends unaccepted sends once', async (t) => {
  const first = await startTestServer(t)
  const port = first.port
  const alice = await client(t, { port, name: 'alice' })
  const bob = await client(t, { port, name: 'bob', autoAck: false })
  const bobGot = inbox(bob)
  const events: string[] = []
  const reconnecting: ReconnectingEvent[] = []
  alice.on('reconnecting', (e) => {
    events.push('reconnecting')
    reconnecting.push(e)
  })
  alice.on('reconnected', (e) => events.push(`reconnected resent=${e.resent}`))

  // bob gets m1 and does not acknowledge it: it stays queued across the restart.
  const m1 = await alice.send('bob', 'm1', { receipt: false })
  await until('m1', () => bobGot.find((m) => m.text === 'm1'))
  // m2 is accepted; it will be sent again below with the same msgId, as a client would after a lost ACCEPTED.
  const m2 = await alice.send('bob', 'm2', { receipt: false })
  await until('m2', () => bobGot.find((m) => m.text === 'm2'))
  bob.ack(bobGot.find((m) => m.text === 'm2')!.seq)

  await first.stop()
  // The server said why (CLOSING 'shutdown'), and every attempt while it is down still carries that reason.
  await until('alice tried twice', () => reconnecting.length >= 2 || undefined)
  assert.equal(alice.connected, false)
  for (const e of reconnecting) {
    assert.equal(e.reason, 'shutdown', `attempt ${e.attempt}`)
    assert.match(e.text ?? '', /shutting down/)
  }
  assert.ok(reconnecting[1]!.error instanceof SwitchboardError, 'a failed attempt says why it failed')
  // Sent while the server is down: waits in the client, goes out after the login.
  const m3 = alice.send('bob', 'm3', { receipt: false })

  const second = await startTestServer(t, { port }, { dataDir: first.dataDir })
  assert.equal(second.port, port)
  const r3 = await m3
  // queued or stored, depending on whether bob or alice logged in again first
  assert.ok(r3.accepted === 'queued' || r3.accepted === 'stored', String(r3.accepted))
  await until('alice reconnected', () => events.find((e) => e.startsWith('reconnected')))
  await until('bob reconnected', () => (bob.connected ? true : undefined))

  // m2 again with its msgId: the server knows it (durable dedupe), bob does not get it twice.
  const again = await alice.send('bob', 'm2', { receipt: false, msgId: m2.msgId })
  assert.equal(again.accepted, 'duplicate')
  await until(
    'm1 redelivered and m3',
    () => (bobGot.filter((m) => m.text === 'm1').length >= 2 && bobGot.find((m) => m.text === 'm3')) || undefined,
  )
  // Nothing more before a message sent after them all: queued behind them, it comes last.
  await alice.send('bob', 'm4', { receipt: false })
  await until('m4', () => bobGot.find((m) => m.text === 'm4'))
  const texts = bobGot.map((m) => m.text)
  assert.deepEqual(texts, ['m1', 'm2', 'm1', 'm3', 'm4'], 'm1 is redelivered (never acknowledged), m2 once, m3 once')
  assert.equal(bobGot[2]!.msgId, m1.msgId)
  assert.equal(alice.pendingSends, 0)
})

test('async iteration over pushed messages', async (t) => {
  const { port } = await startTestServer(t)
  const alice = await client(t, { port, name: 'alice' })
  const bob = await client(t, { port, name: 'bob' })
  const got: string[] = []
  const reading = (async () => {
    for await (const m of bob.messages()) {
      got.push(m.text)
      if (got.length === 3) break
    }
  })()
  for (const text of ['one', 'two', 'three']) void alice.send('bob', text, { receipt: false })
  await reading
  assert.deepEqual(got, ['one', 'two', 'three'])
})

test('poll mode: peek then ack, take, and a long poll', async (t) => {
  const { port, server } = await startTestServer(t)
  const alice = await client(t, { port, name: 'alice' })
  const dave = await client(t, { port, name: 'dave', mode: 'poll' })
  const receipts: ReceiptEvent[] = []
  alice.on('receipt', (r) => receipts.push(r))
  const sent = await Promise.all(['p1', 'p2', 'p3'].map((x) => alice.send('dave', x, { receipt: false })))
  assert.ok(sent.every((s) => s.accepted === 'queued'))

  const peeked = await dave.take(10, 'peek')
  assert.deepEqual(
    peeked.map((m) => m.text),
    ['p1', 'p2', 'p3'],
  )
  for (const m of peeked) dave.ack(m.seq)
  await until('the acks to be committed', async () => (await server.broker.queueStats(dave.id)).count === 0)
  assert.deepEqual(await dave.take(10, 'take'), [], 'acknowledged messages are gone')

  const longPoll = dave.take(10, 'take', 3000)
  // Let the take be waiting when the message comes (nothing tells when it is; arriving earlier, the message would
  // be answered at once and the test would pass without testing the wake-up).
  await elapse(100)
  const r = await alice.send('dave', 'late', { receipt: true })
  const taken = await longPoll
  assert.deepEqual(
    taken.map((m) => m.text),
    ['late'],
  )
  // take() acknowledged it: the sender gets its 200
  assert.equal(r.status, 200)
})

test('refusals reject with the code and the limit; a wrong token and a taken name too', async (t) => {
  const { port } = await startTestServer(t, { maxTextBytes: 100 })
  const alice = await client(t, { port, name: 'alice' })
  await assert.rejects(
    alice.send('nobody', 'x'),
    (e: unknown) => e instanceof SwitchboardError && e.code === 'SB_ERR_UNKNOWN_RECIPIENT',
  )
  await assert.rejects(
    alice.send('alice', 'y'.repeat(101)),
    (e: unknown) => e instanceof SwitchboardError && e.code === 'SB_ERR_TOO_LARGE' && e.limit === 'maxTextBytes',
  )
  await assert.rejects(
    SwitchboardClient.connect({ port, name: 'alice', register: true }),
    (e: unknown) => e instanceof SwitchboardError && e.code === 'SB_ERR_NAME_TAKEN',
  )
  await assert.rejects(
    SwitchboardClient.connect({ port, name: 'alice', token: 'wrong' }),
    (e: unknown) => e instanceof SwitchboardError && e.code === 'SB_ERR_AUTH',
  )
  await assert.rejects(
    SwitchboardClient.connect({ port: 1, name: 'x', reconnect: false }),
    (e: unknown) => e instanceof SwitchboardError && e.code === 'SB_ERR_CONNECT',
  )
  // the session survives the refusals
  assert.equal((await alice.whoami()).name, 'alice')
})

test('requests: who, rename, topics with mailbox delivery, block', async (t) => {
  const { port } = await startTestServer(t)
  const alice = await client(t, { port, name: 'alice' })
  const bob = await client(t, { port, name: 'bob' })
  const bobGot = inbox(bob)
  assert.deepEqual(
    (await alice.who()).map((u) => u.name),
    ['alice', 'bob'],
  )
  const renames: string[] = []
  bob.on('rename', (e) => renames.push(`${e.oldName}->${e.newName}`))
  assert.equal(await alice.rename('alicia'), 'alicia')
  assert.equal(alice.name, 'alicia')
  await until('rename event', () => renames[0])
  assert.equal(renames[0], 'alice->alicia')
  await assert.rejects(alice.rename('bob'), (e: unknown) => e instanceof SwitchboardError && e.code === 'SB_ERR_NAME_TAKEN')

  assert.equal(await bob.subscribe('news'), true)
  assert.deepEqual(await bob.subscriptions(), ['news'])
  assert.deepEqual(await alice.topics(), [{ topic: 'news', subscribers: 1 }])
  const pub = await alice.send({ kind: 'topic', topic: 'news' }, 'extra!')
  assert.equal(pub.recipients, 1)
  await until('topic mail', () => bobGot.find((m) => m.topic === 'news'))

  await bob.block('alicia')
  await assert.rejects(
    alice.send('bob', 'blocked?'),
    (e: unknown) => e instanceof SwitchboardError && e.code === 'SB_ERR_UNKNOWN_RECIPIENT',
  )
  await bob.unblock('alicia')
  assert.equal((await alice.send('bob', 'unblocked')).status, 200)
})

test('conversations: request, accept, say, close', async (t) => {
  const { port } = await startTestServer(t)
  const alice = await client(t, { port, name: 'alice' })
  const bob = await client(t, { port, name: 'bob' })
  const aliceEv: string[] = []
  const bobEv: string[] = []
  alice.on('conversation', (e) => aliceEv.push(`${e.event}:${e.text ?? ''}`))
  bob.on('conversation', (e) => {
    bobEv.push(`${e.event}:${e.text ?? ''}`)
    if (e.event === 'request') bob.accept(e.convId)
  })
  const id = await alice.requestConversation('bob')
  await until('accepted', () => aliceEv.find((e) => e.startsWith('accepted')))
  alice.say(id, 'psst')
  await until('said', () => bobEv.find((e) => e === 'message:psst'))
  bob.closeConversation(id)
  await until('closed', () => aliceEv.find((e) => e.startsWith('closed')))
  const errors: string[] = []
  alice.on('error', (e) => errors.push(e.error.code))
  alice.say(id, 'too late')
  await until('error event', () => errors[0])
  assert.equal(errors[0], 'SB_ERR_UNKNOWN_CONVERSATION')
})

test('credentials are remembered in a 0600 file and resume the same user', async (t) => {
  const { port } = await startTestServer(t)
  const home = mkdtempSync(join(tmpdir(), 'sb-home-'))
  t.after(() => rmSync(home, { recursive: true, force: true }))
  const store = new FileCredentialStore(join(home, 'credentials.json'))
  const a1 = await SwitchboardClient.connect({ port, name: 'erin', credentials: store })
  const id = a1.id
  await a1.close()
  assert.equal(statSync(store.path).mode & 0o777, 0o600)
  assert.equal(store.get(`127.0.0.1:${port}`, 'erin')?.id, id)
  const a2 = await client(t, { port, name: 'erin', credentials: store })
  assert.equal(a2.id, id, 'logged in again, not registered anew')
  await a2.rename('erina')
  assert.equal(store.get(`127.0.0.1:${port}`, 'erina')?.id, id, 'the store follows a rename')
  assert.equal(store.get(`127.0.0.1:${port}`, 'erin'), undefined)
})

test('the WebSocket transport carries the same frames (ws://host:httpPort/v1/ws)', async (t) => {
  const { server, port } = await startTestServer(t, { httpPort: 0 })
  const url = `ws://127.0.0.1:${server.port('http')}/v1/ws`
  const alice = await client(t, { url, WebSocket: WebSocket as unknown as WebSocketConstructor, name: 'alice' })
  const bob = await client(t, { port, name: 'bob' })
  const got = inbox(alice)
  const bobGot = inbox(bob)
  assert.equal((await alice.send('bob', 'over ws')).status, 200)
  assert.equal(bobGot[0]?.text, 'over ws')
  assert.equal((await bob.send('alice', 'back over ws')).status, 200)
  await until('ws message', () => got[0])
  assert.equal(got[0]!.text, 'back over ws')
  assert.equal((await alice.whoami()).name, 'alice')
})

test('files: upload with a text, download checked by SHA-256', async (t) => {
  const { port } = await startTestServer(t)
  const alice = await client(t, { port, name: 'alice' })
  const bob = await client(t, { port, name: 'bob' })
  const got = inbox(bob)
  const dir = mkdtempSync(join(tmpdir(), 'sb-files-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const src = join(dir, 'hello.bin')
  writeFileSync(src, Buffer.alloc(300_000, 7))
  let sendErr: SwitchboardError | undefined
  const progress: number[] = []
  const r = await alice
    .sendFile('bob', await fileSource(src), { text: 'a file', onProgress: (p) => progress.push(p.bytes) })
    .catch((e: SwitchboardError) => {
      sendErr = e
      return undefined
    })
  if (sendErr?.code === 'SB_ERR_UNSUPPORTED') {
    t.skip('file transfer is not enabled on this server yet')
    return
  }
  assert.ok(r?.fileId, `upload accepted (${sendErr?.message ?? ''})`)
  assert.equal(progress.at(-1), 300_000)
  const m = await until('file message', () => got.find((x) => x.kind === 'file'))
  assert.equal(m.file?.name, 'hello.bin')
  assert.equal(m.text, 'a file')
  const out = mkdtempSync(join(tmpdir(), 'sb-dl-'))
  t.after(() => rmSync(out, { recursive: true, force: true }))
  const d = await downloadToFile(bob, m.file!.fileId, out)
  assert.equal(statSync(d.path).size, 300_000)
})
