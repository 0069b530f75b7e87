/**
 * 003 gateway with real ZeroMQ REQ and SUB sockets, sending the original client's strings (captures/003).
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { Request, Subscriber } from 'zeromq'
import { brokerFixture, NativeClient } from '../helpers/gateway-fixture.js'
import { elapse, until } from '../helpers/wait.js'
import { startP003 } from '../../src/protocols/p003/server.js'
import { Op } from '../../src/protocols/native/frames.js'

const LO = 47100
const HI = 47105 // three registrations' worth of endpoints

async function setup(t: TestContext) {
  const fx = await brokerFixture(t)
  const gw = await startP003(fx.broker, {
    host: '127.0.0.1',
    pubPort: 0,
    repPort: 0,
    endpointPorts: [LO, HI],
    topicScanMs: 100,
    joinDelayMs: 100,
  })
  fx.onClose(() => gw.close())
  const req = async (): Promise<(text: string | Buffer) => Promise<string>> => {
    const r = new Request({ receiveTimeout: 3000, linger: 0 })
    r.connect(`tcp://127.0.0.1:${gw.repPort}`)
    t.after(() => r.close())
    return async (text) => {
      await r.send(text)
      const [m] = await r.receive()
      return m!.toString('utf8')
    }
  }
  const sub = async (...prefixes: string[]) => {
    const s = new Subscriber({ receiveTimeout: 3000, linger: 0 })
    s.connect(`tcp://127.0.0.1:${gw.pubPort}`)
    for (const p of prefixes) s.subscribe(p)
    t.after(() => s.close())
    // ZeroMQ's slow joiner: a SUB's subscription reaches the PUB some time after connect(), and nothing says when
    // (the gateway itself holds a new user's publications for joinDelayMs for the same reason). Time is the point.
    await elapse(200)
    return async () => {
      const [m] = await s.receive()
      return m!.toString('utf8')
    }
  }
  return { ...fx, gw, req, sub }
}

test('003 capture replay: reg, e-mail to a user and to a topic, conversation request', async (t) => {
  const { req, sub } = await setup(t)
  const bInbox = await sub('@B@', '@news@')
  const a = await req()
  const b = await req()
  const regA = await a('reg A')
  assert.match(regA, /^tcp:\/\/localhost:\d+ tcp:\/\/localhost:\d+$/)
  const regB = await b('reg B')
  const ports = [...regA.split(' '), ...regB.split(' ')].map((x) => Number(x.split(':')[2]))
  assert.equal(new Set(ports).size, 4, 'four distinct endpoints')
  for (const p of ports) assert.ok(p >= LO && p <= HI)

  assert.equal(await a(';; B De: A\nhello B, this is an e-mail'), '')
  assert.equal(await bInbox(), '@B@ De: A\nhello B, this is an e-mail')
  assert.equal(await a(';; news De: A\ntopic mail'), '')
  assert.equal(await bInbox(), '@news@ De: A\ntopic mail')
  assert.equal(await a('# A B tcp://localhost:5562'), '')
  assert.equal(await bInbox(), '@B@ pedido_conversa A tcp://localhost:5562')
})

test('003 ↔ native: mail both ways, topic mail from native, mail kept while away and published at reg', async (t) => {
  const { broker, nativePort, req, sub } = await setup(t)
  const n = await NativeClient.register(t, nativePort, 'nat')
  const inbox = await sub('@A@', '@sports@', '@carl@')
  const a = await req()
  await a('reg A')
  // native → 003 user
  n.sendText({ kind: 'name', name: 'A' }, 'hi A from native', { receipt: true, msgId: 5 })
  assert.equal(await inbox(), '@A@ De: nat\nhi A from native')
  assert.equal((await n.next('RECEIPT', (r) => r.msgId === 5 && r.status === 200)).status, 200)
  // 003 → native user
  await a(';; nat De: A\nhello nat')
  assert.equal((await n.deliver((x) => x === 'hello nat')).fromName, 'A')
  // native topic mail reaches 003 subscribers (through the topic bridge), and native subscribers
  const corr = n.request(Op.SUBSCRIBE, 'sports')
  await n.next('RESULT', (r) => r.corr === corr)
  await until("the gateway's topic bridge to subscribe to sports (its periodic scan)", async () => {
    const c = n.request(Op.TOPICS, '')
    const r = await n.next('RESULT', (x) => x.corr === c)
    return r.items.find((i) => i.name === 'sports')?.count === 2
  })
  const n2 = await NativeClient.register(t, nativePort, 'nat2')
  n2.sendText({ kind: 'topic', topic: 'sports' }, 'goal!')
  assert.equal(await inbox(), '@sports@ De: nat2\ngoal!')
  assert.equal((await n.deliver((x) => x === 'goal!')).topic, 'sports')
  // 003 → topic with a native subscriber
  await a(';; sports De: A\nfrom zmq')
  assert.equal(await inbox(), '@sports@ De: A\nfrom zmq')
  assert.equal((await n.deliver((x) => x === 'from zmq')).fromName, 'A')
  // mail for a 003 user who is away waits in the queue and is published when it registers
  const carl = await broker.ensureLegacyUser('carl')
  n.sendText({ kind: 'name', name: 'carl' }, 'while you were away')
  await until("the message in carl's queue", async () => (await broker.queueStats(carl.id)).count === 1)
  const c = await req()
  await c('reg carl')
  assert.equal(await inbox(), '@carl@ De: nat\nwhile you were away')
})

test('003: endpoints are reused after a session ends; the pool running dry is refused, not crashed', async (t) => {
  const { broker, gw, req } = await setup(t)
  const r = await req()
  assert.equal(gw.gateway.freeEndpoints, 6)
  await r('reg u1')
  await r('reg u2')
  await r('reg u3')
  assert.equal(gw.gateway.freeEndpoints, 0)
  assert.match(await r('reg u4'), /^ERROR no free endpoints/)
  // re-registering the same name replaces it and reuses endpoints
  assert.match(await r('reg u3'), /^tcp:\/\/localhost:\d+ tcp:\/\/localhost:\d+$/)
  // a session that ends (as the reaper ends an idle one) gives its endpoints back
  const u1 = await broker.findUser({ name: 'u1' })
  broker.end(broker.sessionOf(u1!.id)!, 'idle', 'idle')
  await until('endpoints back', () => gw.gateway.freeEndpoints === 2)
  assert.match(await r('reg u4'), /^tcp:\/\/localhost:\d+ tcp:\/\/localhost:\d+$/)
})

test('003 bad input: invalid UTF-8, unknown commands, names that are not ours: "" and a log line', async (t) => {
  const { nativePort, req, sub, log } = await setup(t)
  await NativeClient.register(t, nativePort, 'owner')
  const inbox = await sub('@owner@', '@marker@')
  const r = await req()
  assert.equal(await r(Buffer.from([0x72, 0x65, 0x67, 0x20, 0xff, 0xfe])), '')
  assert.ok(log.has('warn', /unknown or malformed request/))
  assert.equal(await r('refresh'), '')
  assert.match(await r('reg owner'), /^ERROR .*registered with a token/)
  // nobody can mail as a native user
  assert.equal(await r(';; owner De: owner\nspoofed'), '')
  assert.ok(log.has('warn', /not ours refused/))
  assert.equal(await r('reg a@b'), 'ERROR the name "a@b" is not valid')
  // the REP socket is still in step and serves the next request
  assert.match(await r('reg fine'), /^tcp:/)
  // Nothing was published for owner: the first publication the subscriber sees is a later one, on the same PUB.
  assert.equal(await r(';; marker De: fine\nlater'), '')
  assert.equal(await inbox(), '@marker@ De: fine\nlater')
})
