/**
 * 003 gateway with real ZeroMQ REQ and SUB sockets, sending the original client's strings (captures/003).
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { Pull, Request, Subscriber } from 'zeromq'
import { brokerFixture, NativeClient } from '../helpers/gateway-fixture.js'
import { elapse, until } from '../helpers/wait.js'
import { startP003 } from '../../src/protocols/p003/server.js'
import { Op } from '../../src/protocols/native/frames.js'

/**
 * Three registrations' worth of endpoints, at a place of their own in 24300-26297 for each test (gateway-matrix uses 24200-24219): the gateway
 * probes that nobody on this host is bound to a port before handing it out, so another test process using the
 * same ports at the same time would look like a client still holding them. Below the kernel's ephemeral range
 * (32768-60999 on Linux): there, any test's port-0 listener or outgoing connection could take one (CI saw a pool
 * port in use, and three registrations left two endpoints free).
 */
const endpointRange = (): [number, number] => {
  const lo = 24300 + 6 * Math.floor(Math.random() * 333)
  return [lo, lo + 5]
}

/** What a refused `reg` answers: two wildcard endpoints, which the original client can bind. */
const REFUSED = 'tcp://localhost:* tcp://localhost:*'

async function setup(t: TestContext, opts: { idleTimeoutMs?: number; leaseGraceMs?: number } = {}) {
  const fx = await brokerFixture(t, {
    ...(opts.idleTimeoutMs !== undefined && { idleTimeoutMs: opts.idleTimeoutMs, reapIntervalMs: 50 }),
  })
  const [lo, hi] = endpointRange()
  const gw = await startP003(fx.broker, {
    host: '127.0.0.1',
    pubPort: 0,
    repPort: 0,
    endpointPorts: [lo, hi],
    topicScanMs: 100,
    joinDelayMs: 100,
    ...(opts.leaseGraceMs !== undefined && { leaseGraceMs: opts.leaseGraceMs }),
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
  /**
   * The original client (ORIGINALS §003), socket for socket: REQ `reg <name>`, split the reply and bind a PULL
   * socket on its second word, then a SUB socket subscribed to `@name@` and to `@topic@` per interest.
   * quit() closes them all, as the process exiting does.
   */
  const original = async (name: string, topics: string[] = []) => {
    const r = new Request({ receiveTimeout: 3000, linger: 0 })
    r.connect(`tcp://127.0.0.1:${gw.repPort}`)
    await r.send(`reg ${name}`)
    const reply = (await r.receive())[0]!.toString('utf8')
    const [, pullAddr] = reply.split(' ')
    const pull = new Pull({ linger: 0 })
    await pull.bind(pullAddr!) // the original crashes here ("Invalid argument", "Address already in use")
    const s = new Subscriber({ receiveTimeout: 3000, linger: 0 })
    s.connect(`tcp://127.0.0.1:${gw.pubPort}`)
    for (const p of [name, ...topics]) s.subscribe(`@${p}@`)
    let open = true
    const quit = () => {
      if (!open) return
      open = false
      for (const x of [r, pull, s]) x.close()
    }
    t.after(quit)
    const inbox = async () => (await s.receive())[0]!.toString('utf8')
    return { reply, pullAddr: pullAddr!, pull, inbox, quit }
  }
  const portOf = (endpoint: string) => Number(endpoint.split(':')[2])
  /** A user's id, for checking its session with broker.sessionOf (synchronous). */
  const idOf = async (name: string) => (await fx.broker.findUser({ name }))!.id
  return { ...fx, gw, lo, hi, req, sub, original, portOf, idOf }
}

test('003 capture replay: reg, e-mail to a user and to a topic, conversation request', async (t) => {
  const { req, sub, lo, hi } = await setup(t)
  const bInbox = await sub('@B@', '@news@')
  const a = await req()
  const b = await req()
  const regA = await a('reg A')
  assert.match(regA, /^tcp:\/\/localhost:\d+ tcp:\/\/localhost:\d+$/)
  const regB = await b('reg B')
  const ports = [...regA.split(' '), ...regB.split(' ')].map((x) => Number(x.split(':')[2]))
  assert.equal(new Set(ports).size, 4, 'four distinct endpoints')
  for (const p of ports) assert.ok(p >= lo && p <= hi)

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
  assert.equal(await r('reg u4'), REFUSED)
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
  // "reg" with bytes that are not UTF-8: still a registration to the original client, which wants endpoints
  assert.equal(await r(Buffer.from([0x72, 0x65, 0x67, 0x20, 0xff, 0xfe])), REFUSED)
  assert.ok(log.has('warn', /registration refused/))
  assert.equal(await r(Buffer.from([0x3b, 0x3b, 0x20, 0xff, 0xfe])), '')
  assert.ok(log.has('warn', /unknown or malformed request/))
  assert.equal(await r('refresh'), '')
  assert.equal(await r('reg owner'), REFUSED)
  assert.match(await inbox(), /^@owner@ De: server\nRegistration refused: .*registered with a token/)
  // nobody can mail as a native user
  assert.equal(await r(';; owner De: owner\nspoofed'), '')
  assert.ok(log.has('warn', /not ours refused/))
  assert.equal(await r('reg @ab'), REFUSED)
  // the REP socket is still in step and serves the next request
  assert.match(await r('reg fine'), /^tcp:/)
  // Nothing was published for owner: the first publication the subscriber sees is a later one, on the same PUB.
  assert.equal(await r(';; marker De: fine\nlater'), '')
  assert.equal(await inbox(), '@marker@ De: fine\nlater')
})

test('003 original client that only reads: kept while its SUB is there, mail published, endpoints never handed to another while held', async (t) => {
  const { broker, nativePort, gw, req, original, portOf, idOf } = await setup(t, { idleTimeoutMs: 2000, leaseGraceMs: 100 })
  const a = await original('A', ['news'])
  await until('the SUB filter @A@ on XPUB', () => gw.gateway.subscribers('A') === 1)
  const aPorts = a.reply.split(' ').map(portOf)
  // A control client that registers and never subscribes: the server cannot see it, so the idle timeout ends it.
  // Its PULL stays bound, as a client the server knows nothing of would.
  const ctl = await req()
  const ctlReply = await ctl('reg ctl')
  const ctlPull = new Pull({ linger: 0 })
  await ctlPull.bind(ctlReply.split(' ')[1]!)
  t.after(() => ctlPull.close())
  const ctlId = await idOf('ctl')
  const aId = await idOf('A')
  await until('the idle timeout to end ctl', () => broker.sessionOf(ctlId) === undefined, 5000)
  // A registered before ctl and has said nothing since: it is still there, and its mail is published.
  assert.ok(broker.sessionOf(aId), 'A is not reaped while its SUB holds @A@')
  const n = await NativeClient.register(t, nativePort, 'nat')
  n.sendText({ kind: 'name', name: 'A' }, 'long after registration', { receipt: true, msgId: 7 })
  assert.equal(await a.inbox(), '@A@ De: nat\nlong after registration')
  assert.equal((await n.next('RECEIPT', (r) => r.msgId === 7 && r.status === 200)).status, 200)
  // Newcomers, as the original: neither A's endpoints nor ctl's still-bound port are handed out, and each
  // newcomer binds its PULL without "Address already in use".
  const b = await original('B')
  const bPorts = b.reply.split(' ').map(portOf)
  for (const p of bPorts) assert.ok(!aPorts.includes(p) && p !== portOf(ctlReply.split(' ')[1]!), `port ${p}`)
  const c = await original('C')
  assert.equal(c.reply, REFUSED, 'the pool has no free endpoint that nobody holds')
  // A quits: its filter goes, its session ends after the grace, its endpoints come back and can be bound.
  a.quit()
  await until('A to end', () => broker.sessionOf(aId) === undefined, 5000)
  const d = await original('D')
  assert.match(d.reply, /^tcp:\/\/localhost:\d+ tcp:\/\/localhost:\d+$/)
  const dPorts = d.reply.split(' ').map(portOf)
  assert.ok(
    dPorts.some((p) => aPorts.includes(p)),
    `D gets one of A's released ports: ${dPorts}, A had ${aPorts}`,
  )
  assert.ok(!dPorts.includes(portOf(ctlReply.split(' ')[1]!)), 'never the port ctl still holds')
})

test('003 names: an e-mail address is a name; a refusal is two endpoints the original binds, and says why', async (t) => {
  const { nativePort, original } = await setup(t)
  const ana = await original('ana@mail.com')
  assert.match(ana.reply, /^tcp:\/\/localhost:\d+ tcp:\/\/localhost:\d+$/)
  const n = await NativeClient.register(t, nativePort, 'nat')
  n.sendText({ kind: 'name', name: 'ana@mail.com' }, 'hi ana')
  assert.equal(await ana.inbox(), '@ana@mail.com@ De: nat\nhi ana')
  // "ana" would catch the mail of "ana@mail.com" with its SUB filter "@ana@": refused, and the original survives.
  const ana2 = await original('ana')
  assert.equal(ana2.reply, 'tcp://localhost:* tcp://localhost:*')
  assert.match(
    await ana2.inbox(),
    /^@ana@ De: server\nRegistration refused: the name "ana" would receive the mail of "ana@mail.com"/,
  )
  // A name taken by a native user: refused the same way.
  const nat = await original('nat')
  assert.equal(nat.reply, 'tcp://localhost:* tcp://localhost:*')
  assert.match(await nat.inbox(), /^@nat@ De: server\nRegistration refused: /)
})

test('003 topics: native mail to a topic only a 003 client follows is accepted and published', async (t) => {
  const { nativePort, gw, original } = await setup(t)
  const a = await original('A', ['weather'])
  await until('the bridge to follow "weather"', () => gw.gateway.follows('weather'))
  const n = await NativeClient.register(t, nativePort, 'nat')
  const corr = n.sendText({ kind: 'topic', topic: 'weather' }, 'rain at noon')
  await n.next('ACCEPTED', (x) => x.corr === corr)
  assert.equal(await a.inbox(), '@weather@ De: nat\nrain at noon')
})
