/**
 * The cross-protocol matrix: all four gateways and the native protocol on one broker. Every gateway user
 * exchanges with a native user, and the gateways reach each other where their protocols allow:
 * 002 ↔ 004 ↔ native through the room (ALL); 001 ↔ 003 ↔ native by name; 003 → topic → native.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Request, Subscriber } from 'zeromq'
import { brokerFixture, NativeClient, RawClient } from '../helpers/gateway-fixture.js'
import { elapse } from '../helpers/wait.js'
import { startP001 } from '../../src/protocols/p001/server.js'
import { startP002 } from '../../src/protocols/p002/server.js'
import { startP003 } from '../../src/protocols/p003/server.js'
import { startP004 } from '../../src/protocols/p004/server.js'
import * as c001 from '../../src/protocols/p001/codec.js'
import * as c002 from '../../src/protocols/p002/codec.js'
import * as c004 from '../../src/protocols/p004/codec.js'
import { Op } from '../../src/protocols/native/frames.js'

test('matrix: 001, 002, 003, 004 and native on one broker', async (t) => {
  const fx = await brokerFixture(t)
  const host = '127.0.0.1'
  const g1 = await startP001(fx.broker, { host, port: 0 })
  const g2 = await startP002(fx.broker, { host, port: 0 })
  const g4 = await startP004(fx.broker, { host, port: 0, files: fx.files, paceMs: 10 })
  const g3 = await startP003(fx.broker, {
    host,
    pubPort: 0,
    repPort: 0,
    endpointPorts: [24200, 24219], // below the ephemeral range (gateway-p003.test.ts says why)
    topicScanMs: 100,
    joinDelayMs: 100,
  })
  fx.onClose(async () => {
    await Promise.all([g1.close(), g2.close(), g4.close(), g3.close()])
  })

  const nat = await NativeClient.register(t, fx.nativePort, 'nat')
  // 001 user "one": names itself with a first message to the native user (200 once nat acknowledges)
  const one = await RawClient.connect(t, g1.port)
  const n001 = () => one.next((b) => c001.decode(b))
  one.write(c001.encode({ type: 0, messageId: 1, src: 'one', dst: 'nat', text: '001 to native' }))
  assert.equal((await nat.deliver((x) => x === '001 to native')).fromName, 'one')
  assert.deepEqual(await n001(), { type: 1, messageId: 1, src: 'nat', dst: 'one', text: '200' })

  // 002 user "two", 004 user "four"
  const two = await RawClient.connect(t, g2.port)
  const n002 = () => two.next((b) => c002.decodeDelivery(b))
  two.write(c002.encodeString('two'))
  const four = await RawClient.connect(t, g4.port)
  // presence notices (who connected) are skipped: the others arrive in a fixed order
  const n004 = async (): Promise<string> => {
    for (;;) {
      const m = await four.next((b) => c004.decodeServer(b))
      const s = m.kind === 'file' || m.kind === 'unknown' ? m.kind : m.text
      if (!/ connected$| disconnected$/.test(s)) return s
    }
  }
  four.write(c004.encodeClient({ kind: 'login', name: 'four', utcOffsetSeconds: 0 }))
  assert.match(await n004(), /^Commands:/)

  // 003 user "three"
  const req = new Request({ receiveTimeout: 3000, linger: 0 })
  req.connect(`tcp://127.0.0.1:${g3.repPort}`)
  const sub = new Subscriber({ receiveTimeout: 3000, linger: 0 })
  sub.connect(`tcp://127.0.0.1:${g3.pubPort}`)
  sub.subscribe('@three@')
  sub.subscribe('@chess@')
  t.after(() => {
    req.close()
    sub.close()
  })
  const rq = async (s: string) => {
    await req.send(s)
    return (await req.receive())[0]!.toString()
  }
  const n003 = async () => (await sub.receive())[0]!.toString()
  // ZeroMQ's slow joiner: nothing says when the SUB's subscriptions have reached the PUB (see gateway-p003).
  await elapse(200)
  assert.match(await rq('reg three'), /^tcp:/)

  // ---- native → each gateway user, by name
  nat.sendText({ kind: 'name', name: 'one' }, 'native to 001')
  const f = await n001()
  assert.deepEqual({ ...f, messageId: 0 }, { type: 0, messageId: 0, src: 'nat', dst: 'one', text: 'native to 001' })
  one.write(c001.encode({ type: 1, messageId: f.messageId, src: 'one', dst: 'nat', text: '200' }))
  nat.sendText({ kind: 'name', name: 'three' }, 'native to 003')
  assert.equal(await n003(), '@three@ De: nat\nnative to 003')

  // ---- the room: 002 ↔ 004 ↔ native (001 and 003 have no room)
  two.write(c002.encodeString('002 says hi'))
  assert.equal((await n002()).text, '002 says hi') // own echo
  assert.match(await n004(), /\[two\] 002 says hi$/)
  assert.equal((await nat.deliver((x) => x === '002 says hi')).fromName, 'two')
  four.write(c004.encodeClient({ kind: 'message', text: '004 says hi' }))
  assert.deepEqual({ ...(await n002()), timestamp: 0 }, { timestamp: 0, name: 'four', text: '004 says hi' })
  assert.equal((await nat.deliver((x) => x === '004 says hi')).fromName, 'four')
  nat.sendText({ kind: 'all' }, 'native to the room')
  assert.equal((await n002()).text, 'native to the room')
  assert.match(await n004(), /\[nat\] native to the room$/)

  // ---- 001 ↔ 003 by name
  one.write(c001.encode({ type: 0, messageId: 2, src: 'one', dst: 'three', text: '001 to 003' }))
  assert.equal(await n003(), '@three@ De: one\n001 to 003')
  assert.deepEqual(await n001(), { type: 1, messageId: 2, src: 'three', dst: 'one', text: '200' })
  assert.equal(await rq(';; one De: three\n003 to 001'), '')
  const g = await n001()
  assert.deepEqual({ ...g, messageId: 0 }, { type: 0, messageId: 0, src: 'three', dst: 'one', text: '003 to 001' })

  // ---- 003 and 001 reach the 002 and 004 users by name (shown in their room, marked direct)
  assert.equal(await rq(';; two De: three\n003 to 002'), '')
  assert.deepEqual({ ...(await n002()), timestamp: 0 }, { timestamp: 0, name: 'three', text: '(direct) 003 to 002' })
  one.write(c001.encode({ type: 0, messageId: 3, src: 'one', dst: 'four', text: '001 to 004' }))
  assert.match(await n004(), /\[one\] \(direct\) 001 to 004$/)
  assert.deepEqual(await n001(), { type: 1, messageId: 3, src: 'four', dst: 'one', text: '200' })

  // ---- topics: 003 → topic → native subscriber, native → topic → 003 SUB
  const corr = nat.request(Op.SUBSCRIBE, 'chess')
  await nat.next('RESULT', (r) => r.corr === corr)
  assert.equal(await rq(';; chess De: three\ne4'), '')
  assert.equal(await n003(), '@chess@ De: three\ne4')
  assert.equal((await nat.deliver((x) => x === 'e4')).topic, 'chess')
  const nat2 = await NativeClient.register(t, fx.nativePort, 'nat2')
  nat2.sendText({ kind: 'topic', topic: 'chess' }, 'e5')
  assert.equal(await n003(), '@chess@ De: nat2\ne5')

  // ---- a 004 file reaches 002 (as text), native (as a file message) and the other side in 004's form
  four.write(c004.encodeClient({ kind: 'file', size: 3, filename: 'f.txt', caption: 'caption' }))
  four.write(Buffer.from('abc'))
  assert.match((await n002()).text, /^\[file f\.txt, 3 bytes, id [0-9a-f]+\] caption$/)
  const fm = await nat.next('DELIVER', (d) => d.msg.kind === 1)
  assert.equal(fm.msg.fromName, 'four')
})
