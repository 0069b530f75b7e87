/**
 * 002 gateway over real sockets, with raw clients that send the original client's bytes (captures/002).
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { brokerFixture, NativeClient, RawClient } from '../helpers/gateway-fixture.js'
import { until } from '../helpers/wait.js'
import { startP002 } from '../../src/protocols/p002/server.js'
import { decodeDelivery, encodeString, type Delivery } from '../../src/protocols/p002/codec.js'

const next = (c: RawClient, ms?: number) => c.next<Delivery>((b) => decodeDelivery(b), ms)

async function setup(t: TestContext) {
  const fx = await brokerFixture(t)
  const gw = await startP002(fx.broker, { host: '127.0.0.1', port: 0, maxUsername: 25, maxMessage: 3000 })
  fx.onClose(() => gw.close())
  return { ...fx, port: gw.port }
}

test('002 capture replay: silent login, the sender included, split writes, empty text, UTF-8 names', async (t) => {
  const { port, broker } = await setup(t)
  const a = await RawClient.connect(t, port)
  a.write('0000000561 6c696365'.replace(/ /g, '')) // "alice"
  const b = await RawClient.connect(t, port)
  b.write('00000006d0b1d0bed0b1') // "боб"
  const names = () => [...broker.localSessions()].map((s) => s.user.name)
  await until('both to be logged in', () => names().includes('alice') && names().includes('боб'))
  // Nothing on login: the first bytes either reads below are the delivery of alice's text.
  // the original client writes the size and the bytes separately
  a.write('00000005')
  a.write('68656c6c6f')
  for (const c of [a, b]) {
    const raw = await c.read(8 + 4 + 5 + 4 + 5)
    const ts = Number(raw.readBigUInt64BE(0))
    assert.ok(Math.abs(ts - Date.now() / 1000) < 5, 'timestamp is Unix seconds')
    assert.equal(raw.subarray(8).toString('hex'), '00000005616c6963650000000568656c6c6f')
  }
  b.write('00000013d0bfd180d0b8d0b2d0b5d1822c20616c696365')
  for (const c of [a, b])
    assert.deepEqual({ ...(await next(c)), timestamp: 0 }, { timestamp: 0, name: 'боб', text: 'привет, alice' })
  a.write('00000000') // an empty text is legal and broadcast
  for (const c of [a, b]) assert.equal((await next(c)).text, '')
})

test('002 ↔ native: the room is ALL both ways', async (t) => {
  const { port, nativePort, broker } = await setup(t)
  const n = await NativeClient.register(t, nativePort, 'nat')
  const a = await RawClient.connect(t, port)
  a.write(encodeString('alice'))
  await until('alice to be logged in', () => [...broker.localSessions()].some((s) => s.user.name === 'alice'))
  n.sendText({ kind: 'all' }, 'hello room')
  assert.deepEqual({ ...(await next(a)), timestamp: 0 }, { timestamp: 0, name: 'nat', text: 'hello room' })
  a.write(encodeString('hi nat'))
  const m = await n.deliver((x) => x === 'hi nat')
  assert.equal(m.fromName, 'alice')
  assert.equal((await next(a)).text, 'hi nat', 'echo to the sender')
  // a direct message to the 002 user is shown in the room, marked as direct
  n.sendText({ kind: 'name', name: 'alice' }, 'just you', { receipt: true, msgId: 9 })
  assert.equal((await next(a)).text, '(direct) just you')
  assert.equal((await n.next('RECEIPT', (r) => r.msgId === 9 && r.status === 200)).status, 200)
})

test('002 bad input: limits, bad names, invalid UTF-8, flood: closed without a word, logged, nobody else hurt', async (t) => {
  const { port, nativePort, log } = await setup(t)
  await NativeClient.register(t, nativePort, 'taken')
  const good = await RawClient.connect(t, port)
  good.write(encodeString('good'))
  const cases: [string, Buffer, RegExp][] = [
    ['name of 26 bytes (capture)', Buffer.from('0000001a' + '78'.repeat(26), 'hex'), /name too-large: string size 26 > 25/],
    [
      'message over 3000 bytes',
      Buffer.concat([encodeString('big'), Buffer.from('00000bb9', 'hex')]),
      /message too-large: string size 3001 > 3000/,
    ],
    ['size 2^32-1 announced', Buffer.from('ffffffff', 'hex'), /too-large/],
    ['name not UTF-8', Buffer.from('00000002ffff', 'hex'), /name malformed/],
    ['name with a space', encodeString('two words'), /name "two words" refused/],
    ['name registered with a token', encodeString('taken'), /name "taken" refused/],
    ['flood', Buffer.concat([encodeString('fl'), ...Array.from({ length: 600 }, () => encodeString('x'))]), /flood/],
  ]
  for (const [what, bytes, why] of cases) {
    const c = await RawClient.connect(t, port)
    c.write(bytes)
    assert.ok(await c.closedByServer(), `${what}: closed`)
    assert.equal(c.buf.length, 0, `${what}: without a word`)
    assert.ok(log.has('warn', why), `${what}: logged`)
  }
  good.write(encodeString('still fine'))
  assert.equal((await next(good)).text, 'still fine')
})
