/**
 * 001 gateway over real sockets, with raw clients that send the original client's bytes (captures/001).
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { brokerFixture, NativeClient, RawClient } from '../helpers/gateway-fixture.js'
import { elapse } from '../helpers/wait.js'
import { startP001 } from '../../src/protocols/p001/server.js'
import { decode, encode, type Frame } from '../../src/protocols/p001/codec.js'

const next = (c: RawClient, ms?: number) => c.next<Frame>((b) => decode(b), ms)

async function setup(t: TestContext) {
  const fx = await brokerFixture(t)
  const gw = await startP001(fx.broker, { host: '127.0.0.1', port: 0, ackTimeoutMs: 300 })
  fx.onClose(() => gw.close())
  return { ...fx, port: gw.port }
}

// captures/001: the original clients' exact bytes (names carry their garbage after the NUL)
const A_TO_OFFLINE_BOB = '3200000001000000616c696365003132626f620000000000686920626f622028796f7520617265206f66666c696e653f2900'
const B_TO_ALICE = '2100000001000000626f62003132372e616c696365000000686920616c69636500'
const A_ANSWERS_200 = '1c00010001000000616c69636500000062' + '6f62003132372e32303000'

test('001 capture replay: offline store, 300 at once, type-2 delivery, 200 forwarded', async (t) => {
  const { port } = await setup(t)
  const a = await RawClient.connect(t, port)
  a.write(A_TO_OFFLINE_BOB)
  // Switchboard answers in canonical form: names NUL-padded (the original copied alice's garbage "12").
  assert.equal((await a.read(28)).toString('hex'), '1c00010001000000626f620000000000616c6963650000003330300' + '0')

  const b = await RawClient.connect(t, port)
  b.write(B_TO_ALICE)
  // bob's first frame names him: the stored message arrives as type 2, byte for byte the canonical frame.
  const stored = await next(b)
  assert.deepEqual(stored, { type: 2, messageId: 1, src: 'alice', dst: 'bob', text: 'hi bob (you are offline?)' })
  assert.equal(
    encode(stored).toString('hex'),
    '3200020001000000616c696365000000626f620000000000686920626f622028796f7520617265206f66666c696e653f2900',
  )

  // alice gets bob's message as type 0 (and, a deviation, a late "200" for her stored message).
  const got: Frame[] = [await next(a), await next(a)]
  const msg = got.find((f) => f.type === 0)
  assert.deepEqual(msg, { type: 0, messageId: 1, src: 'bob', dst: 'alice', text: 'hi alice' })
  assert.deepEqual(
    got.find((f) => f.type === 1),
    { type: 1, messageId: 1, src: 'bob', dst: 'alice', text: '200' },
  )
  a.write(A_ANSWERS_200)
  // bob gets alice's 200 for his message 1.
  assert.deepEqual(await next(b), { type: 1, messageId: 1, src: 'alice', dst: 'bob', text: '200' })
})

test('001: an online recipient that does not answer gives the sender 300 after the ack timeout', async (t) => {
  const { port } = await setup(t)
  const a = await RawClient.connect(t, port)
  const b = await RawClient.connect(t, port)
  // bob names himself with a message to a third party (answered 300 at once: offline)
  b.write(encode({ type: 0, messageId: 1, src: 'bob', dst: 'zed', text: 'x' }))
  assert.equal((await next(b)).text, '300')
  const t0 = Date.now()
  a.write(encode({ type: 0, messageId: 7, src: 'alice', dst: 'bob', text: 'are you there?' }))
  assert.deepEqual(await next(b), { type: 0, messageId: 7, src: 'alice', dst: 'bob', text: 'are you there?' })
  const ans = await next(a)
  assert.deepEqual(ans, { type: 1, messageId: 7, src: 'bob', dst: 'alice', text: '300' })
  assert.ok(Date.now() - t0 >= 250, 'the 300 waits for the ack timeout')
  // a late 200 is still forwarded (the message stayed queued)
  b.write(encode({ type: 1, messageId: 7, src: 'bob', dst: 'alice', text: '200' }))
  assert.deepEqual(await next(a), { type: 1, messageId: 7, src: 'bob', dst: 'alice', text: '200' })
})

test('001 ↔ native: 200 receipts both ways; a long native name is shown as #id and can be answered', async (t) => {
  const { port, nativePort } = await setup(t)
  const n = await NativeClient.register(t, nativePort, 'alexandra-native')
  const a = await RawClient.connect(t, port)
  a.write(encode({ type: 0, messageId: 1, src: 'al', dst: 'nobody', text: 'hello' }))
  assert.equal((await next(a)).text, '300')

  n.sendText({ kind: 'name', name: 'al' }, 'from native', { msgId: 42, receipt: true })
  const f = await next(a)
  assert.deepEqual(f, { type: 0, messageId: 42, src: `#${n.id}`, dst: 'al', text: 'from native' })
  a.write(encode({ type: 1, messageId: 42, src: 'al', dst: `#${n.id}`, text: '200' }))
  const r = await n.next('RECEIPT', (x) => x.msgId === 42)
  assert.equal(r.status, 200)

  // 001 → native by #id: the native user receives it and acknowledges; the 001 sender gets 200.
  a.write(encode({ type: 0, messageId: 2, src: 'al', dst: `#${n.id}`, text: 'reply by id' }))
  const m = await n.deliver((x) => x === 'reply by id')
  assert.equal(m.fromName, 'al')
  assert.deepEqual(await next(a), { type: 1, messageId: 2, src: `#${n.id}`, dst: 'al', text: '200' })
})

/**
 * What the original client does with what it receives (ORIGINALS §001): read a 24-byte header, then
 * len - 24 bytes. A server that closes makes that read return nothing, and the client crashes; so a refused
 * name must leave every byte readable as whole frames, and the connection open.
 */
async function originalRead(c: RawClient): Promise<Frame> {
  const header = await c.read(24)
  const len = header.readUInt16LE(0)
  assert.ok(len >= 24 && len <= 1024, `len ${len}`)
  const r = decode(Buffer.concat([header, await c.read(len - 24)]))
  assert.ok(r.ok && r.rest.length === 0)
  return r.frame
}

// The original client's bytes for "carol" and "bob" (8 bytes copied from its command line, garbage after the NUL).
const CAROL_SRC = '6361726f6c003132'
const BOB_SRC = '626f62003132372e'
const frameFrom = (src: string, dst: string, id: number, text: string) => {
  const f = encode({ type: 0, messageId: id, src: 'x', dst, text })
  return Buffer.concat([f.subarray(0, 8), Buffer.from(src, 'hex'), f.subarray(16)])
}

test('001: a name registered with a token is refused in a way the original survives: 300, a notice, the connection open', async (t) => {
  const { port, nativePort, log } = await setup(t)
  await NativeClient.register(t, nativePort, 'carol')
  const c = await RawClient.connect(t, port)
  c.write(frameFrom(CAROL_SRC, 'bob', 3, 'hi'))
  assert.equal(
    encode(await originalRead(c)).toString('hex'),
    '1c00010003000000626f6200000000006361726f6c00000033303000', // type 1, messageID 3, bob → carol, "300\0"
  )
  const notice = await originalRead(c)
  assert.equal(notice.type, 2, 'a stored-message frame: shown, not answered')
  assert.equal(notice.src, 'server')
  assert.equal(notice.dst, 'carol')
  assert.match(notice.text, /^The name "carol" is refused: .*registered with a token/)
  assert.ok(log.has('warn', /p001: name "carol" refused: .*the connection stays open/))
  // The client goes on: its next message is answered "300" again (no second notice), and nothing closes.
  c.write(frameFrom(CAROL_SRC, 'bob', 4, 'again'))
  assert.deepEqual(await originalRead(c), { type: 1, messageId: 4, src: 'bob', dst: 'carol', text: '300' })
  assert.equal(c.ended, false)
})

test('001: a name in use is refused without closing; once it is free the same connection takes it', async (t) => {
  const { port, nativePort } = await setup(t)
  const nat = await NativeClient.register(t, nativePort, 'nat')
  const first = await RawClient.connect(t, port)
  first.write(frameFrom(BOB_SRC, 'nat', 1, 'first bob'))
  assert.equal((await nat.deliver((x) => x === 'first bob')).fromName, 'bob')
  assert.equal((await originalRead(first)).text, '200')
  const second = await RawClient.connect(t, port)
  second.write(frameFrom(BOB_SRC, 'nat', 1, 'second bob'))
  assert.deepEqual(await originalRead(second), { type: 1, messageId: 1, src: 'nat', dst: 'bob', text: '300' })
  assert.match((await originalRead(second)).text, /^The name "bob" is refused: /)
  // the first bob quits; the second one's next frame names it bob and is delivered
  first.socket.end()
  await first.closedByServer()
  second.write(frameFrom(BOB_SRC, 'nat', 2, 'second bob again'))
  assert.equal((await nat.deliver((x) => x === 'second bob again')).fromName, 'bob')
  assert.deepEqual(await originalRead(second), { type: 1, messageId: 2, src: 'nat', dst: 'bob', text: '200' })
  assert.equal(second.ended, false)
})

test('001 bad input: each closes only its own connection and logs why', async (t) => {
  const { port, log } = await setup(t)
  const good = await RawClient.connect(t, port)
  good.write(encode({ type: 0, messageId: 1, src: 'good', dst: 'x', text: 'hi' }))
  assert.equal((await next(good)).text, '300')

  const cases: [string, Buffer, RegExp][] = [
    ['len below the header', Buffer.from('1000000001000000', 'hex'), /malformed frame: len 16/],
    ['len above 1024', Buffer.from('0108', 'hex'), /too-large frame: len 2049/],
    [
      'src not UTF-8',
      Buffer.from('1c00000001000000ff6f620000000000616c69636500000033303000', 'hex'),
      /src name is not valid UTF-8/,
    ],
    ['unknown type', encode({ type: 9, messageId: 1, src: 'u9', dst: 'x', text: '' }), /unknown frame type 9/],
    [
      'flood',
      Buffer.concat(Array.from({ length: 500 }, (_, i) => encode({ type: 1, messageId: i, src: 'fl', dst: 'x', text: '200' }))),
      /flood/,
    ],
  ]
  for (const [what, bytes, why] of cases) {
    const c = await RawClient.connect(t, port)
    c.write(bytes)
    assert.ok(await c.closedByServer(), `${what}: closed`)
    assert.ok(log.has('warn', why), `${what}: logged`)
  }
  // a truncated frame: the server waits for the rest, the connection stays open, and the frame is whole later
  const trunc = await RawClient.connect(t, port)
  const whole = encode({ type: 0, messageId: 1, src: 'tr', dst: 'x', text: 'hello' })
  trunc.write(whole.subarray(0, 20))
  await elapse(100) // pacing, not waiting: the rest comes after a pause
  trunc.write(whole.subarray(20))
  assert.equal((await next(trunc)).text, '300')
  assert.equal(trunc.ended, false)
  // the good connection is untouched
  good.write(encode({ type: 0, messageId: 2, src: 'good', dst: 'y', text: 'still here' }))
  assert.deepEqual(await next(good), { type: 1, messageId: 2, src: 'y', dst: 'good', text: '300' })
})

test('001: a text longer than one frame from a native user arrives in several frames, never cut', async (t) => {
  const { port, nativePort } = await setup(t)
  const n = await NativeClient.register(t, nativePort, 'nat')
  const a = await RawClient.connect(t, port)
  a.write(encode({ type: 0, messageId: 1, src: 'lng', dst: 'nobody', text: '' }))
  await next(a)
  const text = 'é'.repeat(1500) // 3000 bytes
  n.sendText({ kind: 'name', name: 'lng' }, text)
  const parts: string[] = []
  while (parts.join('').length < text.length) parts.push((await next(a)).text)
  assert.ok(parts.length >= 4)
  assert.equal(parts.join(''), text)
})
