/**
 * Issue 7 end to end: three `switchboard serve` processes on the real PostgreSQL and Redis, driven over the
 * native protocol by raw clients. Each describe has its own cluster name (schema + key prefix), dropped after.
 *
 *  - three nodes starting at once on a fresh schema migrate it once;
 *  - users on three nodes message each other: pushed, receipts 200 / 202 / 300, order per sender kept;
 *  - one name registered on three nodes at once (and a rename racing them): exactly one wins;
 *  - kill -9 of a node while 10,000 messages are in flight: clients reconnect to survivors, resend what was not
 *    ACCEPTED (same msgIds, IDEMPOTENT), receivers ACK and dedupe: nothing lost, duplicated or reordered;
 *  - Redis (a private one) killed and restarted: nodes reconnect, presence is re-registered, deliveries resume,
 *    queued messages survive.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { ErrorNumbers } from '../../src/core/errors.js'
import { ReceiptStatus } from '../../src/core/types.js'
import { Op, SendFlag, SendStatusCode, type Frame, type FrameOf } from '../../src/protocols/native/frames.js'
import {
  PG_URL,
  PrivateRedis,
  ProcCluster,
  TcpRelay,
  Wire,
  clusterServicesUnavailable,
  redisServerMissing,
  describeFrame,
  until,
  withPg,
  withRedis,
  registryNodes,
  registryOnline,
} from './cluster-e2e-fixture.js'
import { elapse, until as waitUntil } from '../helpers/wait.js'
import { MIGRATIONS } from '../../src/store/postgres/postgres-store.js'

const unavailable = await clusterServicesUnavailable()

type Deliver = FrameOf<'DELIVER'>
type Rcpt = FrameOf<'RECEIPT'>

/** A registered user on one node that records what is pushed to it and ACKs receipts that came through its queue. */
class User {
  readonly delivers: Deliver[] = []
  readonly receipts: Rcpt[] = []
  readonly closings: FrameOf<'CLOSING'>[] = []
  autoAck = true
  id = 0
  token = ''
  private constructor(public wire: Wire) {
    this.listen()
  }

  private listen(): void {
    this.wire.onPush = (f: Frame) => {
      if (f.type === 'DELIVER') {
        this.delivers.push(f)
        if (this.autoAck) this.wire.ack(f.msg.seq)
      } else if (f.type === 'RECEIPT') {
        this.receipts.push(f)
        if (f.ackSeq !== 0) this.wire.ack(f.ackSeq) // a receipt queued for us must be taken off the queue
      } else if (f.type === 'CLOSING') this.closings.push(f)
    }
  }

  static async register(port: number, name: string): Promise<User> {
    const u = new User(await Wire.connect(port))
    const w = await u.wire.register(name)
    u.id = w.id
    u.token = w.token
    return u
  }

  /** Log in again (with the token) on another node. */
  async moveTo(port: number): Promise<void> {
    this.wire = await Wire.connect(port)
    this.listen()
    await this.wire.login(this.id, this.token)
  }

  bodiesFrom(sender: number): string[] {
    return this.delivers.filter((d) => d.msg.from === sender).map((d) => d.msg.body.toString())
  }

  receipt(msgId: number, status: number): Rcpt | undefined {
    return this.receipts.find((r) => r.msgId === msgId && r.status === status)
  }
}

describe('cluster e2e: three server processes', { skip: unavailable }, () => {
  let cluster: ProcCluster
  const users: User[] = []
  before(async () => {
    cluster = await new ProcCluster({ nodes: 3, extra: ['--ack-timeout', '1000'] }).start()
  })
  after(async () => {
    for (const u of users) u.wire.destroy()
    await cluster?.close()
  })
  const port = (i: number): number => cluster.node(i).port

  it('three nodes started at once on a fresh schema migrated it exactly once', async () => {
    const rows = await withPg(
      async (c) =>
        (await c.query<{ version: number }>(`SELECT version FROM ${cluster.name}.schema_version ORDER BY version`)).rows,
    )
    assert.deepEqual(
      rows.map((r) => r.version),
      MIGRATIONS.map((_, i) => i + 1),
      'one row per migration, none applied twice',
    )
    const tables = await withPg(
      async (c) =>
        (
          await c.query<{ table_name: string }>(
            'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1',
            [cluster.name],
          )
        ).rows,
    )
    assert.deepEqual(
      tables.map((t) => t.table_name),
      ['blocks', 'dedupe', 'devices', 'file_access', 'files', 'held', 'log', 'meta', 'schema_version', 'subs', 'users'],
    )
    const nodes = await withRedis(cluster.redisUrl, (r) => r.smembers(`${cluster.name}:nodes`))
    assert.deepEqual(nodes.sort(), ['n0', 'n1', 'n2'], 'every node registered itself')
  })

  it('users on three nodes message each other: pushed, 200 receipts, order per sender kept', async () => {
    const [a, b, c] = await Promise.all([
      User.register(port(0), 'alice'),
      User.register(port(1), 'bob'),
      User.register(port(2), 'carol'),
    ])
    users.push(a, b, c)
    const all = [a, b, c]
    const N = 40
    // Every user sends N messages to each other user, pipelined, asking for receipts.
    const sends = all.flatMap((from, fi) =>
      all
        .filter((to) => to !== from)
        .flatMap((to) =>
          Array.from({ length: N }, (_, i) =>
            from.wire.sendTo(to.id, `${from.id}>${to.id}:${i}`, fi * 10_000 + to.id * 100 + i, SendFlag.RECEIPT),
          ),
        ),
    )
    const answers = await Promise.all(sends)
    for (const f of answers) {
      assert.equal(f.type, 'ACCEPTED', describeFrame(f))
      if (f.type === 'ACCEPTED') assert.equal(f.status, SendStatusCode.queued, 'the recipient is online on another node')
    }
    for (const to of all) await until(`${2 * N} messages pushed to #${to.id}`, () => to.delivers.length >= 2 * N, 15_000)
    for (const to of all)
      for (const from of all.filter((x) => x !== to))
        assert.deepEqual(
          to.bodiesFrom(from.id),
          Array.from({ length: N }, (_, i) => `${from.id}>${to.id}:${i}`),
          `#${from.id} → #${to.id} arrives once each, in order`,
        )
    // The ACKs give every sender a 200 for each message, naming the recipient.
    for (const from of all) {
      await until(
        `${2 * N} receipts 200 for #${from.id}`,
        () => from.receipts.filter((r) => r.status === ReceiptStatus.DELIVERED).length >= 2 * N,
        15_000,
      )
      const d = from.receipts.filter((r) => r.status === ReceiptStatus.DELIVERED)
      assert.equal(new Set(d.map((r) => r.msgId)).size, 2 * N, 'one 200 per message')
      for (const r of d) assert.ok(all.some((u) => u.id === r.recipient && u !== from))
    }
  })

  it('a user offline everywhere: 202 stored, pushed when it logs in on another node, then 200', async () => {
    const [a] = users
    assert.ok(a !== undefined)
    const dave = await User.register(port(2), 'dave')
    users.push(dave)
    dave.wire.post({ type: 'BYE' })
    await dave.wire.closed
    await until('dave offline in the registry', async () => !(await registryOnline(cluster.redisUrl, cluster.name, dave.id)))
    const f = await a.wire.sendTo(dave.id, 'while you were out', 501, SendFlag.RECEIPT)
    assert.equal(f.type, 'ACCEPTED', describeFrame(f))
    assert.equal((f as FrameOf<'ACCEPTED'>).status, SendStatusCode.stored)
    await until('the 202 receipt', () => a.receipt(501, ReceiptStatus.STORED) !== undefined)
    await dave.moveTo(port(1))
    await until(
      'the stored message pushed on n1',
      () => dave.delivers.some((d) => d.msg.body.toString() === 'while you were out'),
      10_000,
    )
    await until('the 200 receipt after the ack', () => a.receipt(501, ReceiptStatus.DELIVERED) !== undefined, 10_000)
  })

  it('an unacknowledged message gives its sender a 300 across nodes; the later ack a 200', async () => {
    const [a, , c] = users
    assert.ok(a !== undefined && c !== undefined)
    c.autoAck = false
    const f = await a.wire.sendTo(c.id, 'ack me later', 601, SendFlag.RECEIPT)
    assert.equal(f.type, 'ACCEPTED', describeFrame(f))
    await until('the push to carol', () => c.delivers.some((d) => d.msg.msgId === 601), 10_000)
    await until('the 300 receipt', () => a.receipt(601, ReceiptStatus.NOT_YET) !== undefined, 10_000)
    assert.equal(a.receipt(601, ReceiptStatus.DELIVERED), undefined)
    c.autoAck = true
    c.wire.ack(c.delivers.find((d) => d.msg.msgId === 601)!.msg.seq)
    await until('the 200 after the late ack', () => a.receipt(601, ReceiptStatus.DELIVERED) !== undefined, 10_000)
  })

  it('one name registered on three nodes at once: exactly one wins; a rename racing two registrations too', async () => {
    const wires = await Promise.all([0, 1, 2].map((i) => Wire.connect(port(i))))
    try {
      const res = await Promise.all(wires.map((w) => w.request({ type: 'REGISTER', version: 1, flags: 0, name: 'zelda' })))
      assert.equal(res.filter((f) => f.type === 'WELCOME').length, 1, res.map(describeFrame).join(', '))
      for (const f of res) if (f.type === 'ERROR') assert.equal(f.code, ErrorNumbers.SB_ERR_NAME_TAKEN)
      // A rename on n0 races registrations of the same name on n1 and n2.
      const renamer = await User.register(port(0), 'renamer')
      users.push(renamer)
      const others = await Promise.all([1, 2].map((i) => Wire.connect(port(i))))
      wires.push(...others)
      const race = await Promise.all([
        renamer.wire.request({ type: 'REQUEST', op: Op.RENAME, arg: 'hotname' }),
        ...others.map((w) => w.request({ type: 'REGISTER', version: 1, flags: 0, name: 'hotname' })),
      ])
      const wins = race.filter((f) => f.type === 'WELCOME' || f.type === 'RESULT')
      assert.equal(wins.length, 1, race.map(describeFrame).join(', '))
      const names = await withPg(
        async (c) => (await c.query(`SELECT id FROM ${cluster.name}.users WHERE name = 'hotname'`)).rowCount,
      )
      assert.equal(names, 1)
    } finally {
      for (const w of wires) w.destroy()
    }
  })
})

// ------------------------------------------------------------------------------------------------ kill -9

const TOTAL = 10_000
const ACTORS = 6
const WINDOW = 200

/**
 * One user of the chaos test: a sender that resends what was not ACCEPTED (same msgId, IDEMPOTENT) after
 * reconnecting to a surviving node, and a receiver that ACKs every DELIVER and dedupes by (sender, msgId).
 */
class Actor {
  wire: Wire | undefined
  id = 0
  token = ''
  readonly plan: { msgId: number; to: number }[] = []
  private nextIdx = 0
  private resend: number[] = []
  readonly inflight = new Set<number>()
  readonly accepted = new Set<number>()
  duplicateAnswers = 0
  readonly errors: string[] = []
  reconnects = 0
  // receiving
  readonly seen = new Map<string, number>() // `${from}:${msgId}` → seq it first came with
  private readonly lastFrom = new Map<number, number>()
  wireDuplicates = 0
  storedTwice = 0
  reordered = 0
  badBodies = 0

  constructor(
    readonly index: number,
    public node: number,
  ) {}

  async connect(port: number, register?: string): Promise<void> {
    const w = await Wire.connect(port)
    w.onPush = (f) => {
      if (f.type === 'DELIVER') this.onDeliver(w, f)
    }
    if (register !== undefined) {
      const wl = await w.register(register)
      this.id = wl.id
      this.token = wl.token
    } else await w.login(this.id, this.token)
    this.wire = w
  }

  private onDeliver(w: Wire, f: Deliver): void {
    const m = f.msg
    w.ack(m.seq)
    const key = `${m.from}:${m.msgId}`
    const prev = this.seen.get(key)
    if (prev !== undefined) {
      this.wireDuplicates++
      if (prev !== m.seq) this.storedTwice++ // the store took a resend as a new message
      return
    }
    this.seen.set(key, m.seq)
    if (m.body.toString() !== key) this.badBodies++
    const last = this.lastFrom.get(m.from) ?? 0
    if (m.msgId < last) this.reordered++
    else this.lastFrom.set(m.from, m.msgId)
  }

  get done(): boolean {
    return this.accepted.size === this.plan.length
  }

  /** Keep WINDOW sends in flight: resends first (oldest first), then new messages. */
  pump(): void {
    const w = this.wire
    if (w === undefined || w.isClosed) return
    while (this.inflight.size < WINDOW) {
      let msgId = this.resend.shift()
      if (msgId === undefined) {
        const p = this.plan[this.nextIdx]
        if (p === undefined) return
        this.nextIdx++
        msgId = p.msgId
      }
      this.sendOne(w, msgId)
    }
  }

  private sendOne(w: Wire, msgId: number): void {
    const p = this.plan[msgId - 1]!
    this.inflight.add(msgId)
    w.sendTo(p.to, `${this.id}:${msgId}`, msgId, SendFlag.IDEMPOTENT).then(
      (f) => {
        this.inflight.delete(msgId)
        if (f.type === 'ACCEPTED') {
          this.accepted.add(msgId)
          if (f.status === SendStatusCode.duplicate) this.duplicateAnswers++
        } else {
          this.errors.push(describeFrame(f))
          this.resend.push(msgId)
          this.resend.sort((a, b) => a - b)
        }
        if (this.wire === w) this.pump()
      },
      () => {
        // The connection died with this SEND unanswered: it may or may not be stored. Resend it after reconnecting.
        if (this.inflight.delete(msgId)) this.resend.push(msgId)
      },
    )
  }

  /** The node died: log in on `port` with the token and resend, oldest first, what was not ACCEPTED. */
  async failover(port: number, node: number): Promise<void> {
    this.wire = undefined
    for (let attempt = 1; ; attempt++) {
      try {
        await this.connect(port)
        break
      } catch (err) {
        if (attempt >= 50) throw err
        await elapse(100) // a retry's back-off: the new node may not listen yet
      }
    }
    this.node = node
    this.reconnects++
    for (const m of this.inflight) this.resend.push(m)
    this.inflight.clear()
    this.resend.sort((a, b) => a - b)
    this.pump()
  }
}

describe('cluster e2e: kill -9 of a node with 10,000 messages in flight', { skip: unavailable }, () => {
  let cluster: ProcCluster
  const actors: Actor[] = []
  before(async () => {
    cluster = await new ProcCluster({ nodes: 3 }).start()
  })
  after(async () => {
    for (const a of actors) a.wire?.destroy()
    await cluster?.close()
  })

  it('clients reconnect to the survivors and resend; nothing accepted is lost, duplicated or reordered', async () => {
    for (let i = 0; i < ACTORS; i++) actors.push(new Actor(i, i % 3))
    await Promise.all(actors.map((a) => a.connect(cluster.node(a.node).port, `chaos${a.index}`)))
    // Each actor sends to the actors on the other nodes, round robin; 10,000 messages in all.
    for (const a of actors) {
      const peers = actors.filter((p) => p.node !== a.node)
      const count = Math.floor(TOTAL / ACTORS) + (a.index < TOTAL % ACTORS ? 1 : 0)
      for (let k = 0; k < count; k++) a.plan.push({ msgId: k + 1, to: peers[k % peers.length]!.id })
    }
    assert.equal(
      actors.reduce((n, a) => n + a.plan.length, 0),
      TOTAL,
    )
    const accepted = (): number => actors.reduce((n, a) => n + a.accepted.size, 0)
    const t0 = Date.now()
    for (const a of actors) a.pump()

    // Kill node 2 once a quarter is accepted: the rest is in flight or not yet sent.
    await until('2,500 messages accepted', () => accepted() >= TOTAL / 4, 30_000)
    const dead = 2
    const victims = actors.filter((a) => a.node === dead)
    const inflightAtKill = actors.reduce((n, a) => n + a.inflight.size, 0)
    const acceptedAtKill = accepted()
    await cluster.node(dead).kill()
    await until(
      'the dead node’s clients to see their connections drop',
      () => victims.every((a) => a.wire === undefined || a.wire.isClosed),
      10_000,
    )
    await Promise.all(victims.map((a, i) => a.failover(cluster.node(i % 2).port, i % 2)))

    await until('every message accepted', () => actors.every((a) => a.done), 60_000)
    const sendMs = Date.now() - t0
    // Every accepted message reaches its receiver (ACKed, deduped).
    const missing = (): number => {
      let lost = 0
      for (const a of actors)
        for (const p of a.plan) {
          const to = actors.find((x) => x.id === p.to)!
          if (a.accepted.has(p.msgId) && !to.seen.has(`${a.id}:${p.msgId}`)) lost++
        }
      return lost
    }
    await until('every accepted message received', () => missing() === 0, 30_000).catch(() => {})
    const counts = {
      accepted: accepted(),
      lost: missing(),
      duplicated: actors.reduce((n, a) => n + a.storedTwice, 0),
      reordered: actors.reduce((n, a) => n + a.reordered, 0),
      wireDuplicates: actors.reduce((n, a) => n + a.wireDuplicates, 0),
      duplicateAnswers: actors.reduce((n, a) => n + a.duplicateAnswers, 0),
      received: actors.reduce((n, a) => n + a.seen.size, 0),
      badBodies: actors.reduce((n, a) => n + a.badBodies, 0),
      sendErrors: actors.flatMap((a) => a.errors),
      acceptedAtKill,
      inflightAtKill,
      reconnects: actors.reduce((n, a) => n + a.reconnects, 0),
      sendMs,
    }
    console.log(`# kill -9 checker: ${JSON.stringify(counts)}`)
    assert.equal(counts.accepted, TOTAL)
    assert.equal(counts.lost, 0, 'an ACCEPTED message never received')
    assert.equal(counts.duplicated, 0, 'a message stored twice (idempotent resend not recognised)')
    assert.equal(counts.reordered, 0, 'a sender’s messages out of order at a receiver')
    assert.equal(counts.received, TOTAL, 'each message reaches the application exactly once')
    assert.equal(counts.badBodies, 0)
    assert.deepEqual(counts.sendErrors, [])
    assert.ok(counts.inflightAtKill > 0, 'messages were in flight when the node died')
    assert.equal(counts.reconnects, victims.length)

    // Every ACK became durable: no message is left that no device acknowledged (the logs keep them, as history).
    // The survivors reaped the dead node from the registry.
    await until(
      'every message acknowledged',
      async () =>
        (await withPg(
          async (c) =>
            (await c.query<{ n: number }>(`SELECT coalesce(sum(q_count), 0)::int AS n FROM ${cluster.name}.users`)).rows[0]!.n,
        )) === 0,
      15_000,
    )
    await until(
      'n2 reaped from the node set',
      async () => !(await withRedis(cluster.redisUrl, (r) => r.sismember(`${cluster.name}:nodes`, 'n2'))),
      15_000,
    )
    const presence = await withRedis(cluster.redisUrl, (r) => r.hgetall(`${cluster.name}:presence`))
    for (const a of actors) {
      assert.deepEqual(
        registryNodes(presence, a.id),
        [`n${a.node}`],
        `chaos${a.index} is registered on the node it reconnected to`,
      )
    }
  })
})

// ------------------------------------------------------------------------------------------------ Redis restart

describe('cluster e2e: Redis killed and restarted', { skip: unavailable ?? redisServerMissing() }, () => {
  // The machine's Redis is shared: this test runs its own, without persistence, and kills that one.
  const redis = new PrivateRedis()
  let cluster: ProcCluster
  const users: User[] = []
  before(async () => {
    await redis.start()
    cluster = await new ProcCluster({ nodes: 3, redisUrl: redis.url }).start()
  })
  after(async () => {
    for (const u of users) u.wire.destroy()
    if (cluster !== undefined) {
      // The keys die with the private Redis; the nodes and the schema are cleaned up as usual.
      await cluster.close()
    }
    await redis.close()
  })

  it('nodes reconnect, presence is re-registered, deliveries resume and queued messages are kept', async () => {
    const port = (i: number): number => cluster.node(i).port
    const [a, b, c, d] = await Promise.all([
      User.register(port(0), 'ra'),
      User.register(port(1), 'rb'),
      User.register(port(2), 'rc'),
      User.register(port(0), 'rd'),
    ])
    users.push(a, b, c, d)
    const q = await User.register(port(2), 'rq')
    q.wire.post({ type: 'BYE' })
    await q.wire.closed
    await until('rq offline', async () => !(await registryOnline(redis.url, cluster.name, q.id)))
    const before = await a.wire.sendTo(b.id, 'before', 1)
    assert.equal(before.type, 'ACCEPTED', describeFrame(before))
    await until('the first message on n1', () => b.bodiesFrom(a.id).includes('before'))
    for (let i = 0; i < 3; i++) {
      const f = await a.wire.sendTo(q.id, `queued ${i}`, 10 + i)
      assert.equal((f as FrameOf<'ACCEPTED'>).status, SendStatusCode.stored, describeFrame(f))
    }

    await redis.kill()
    // Redis is away. A message to a user on the same node is stored and pushed as usual (no Redis on that path);
    // one to a user on another node is stored in PostgreSQL, and its ACCEPTED waits for the presence lookup.
    const local = await a.wire.sendTo(d.id, 'same node, Redis down', 20)
    assert.equal(local.type, 'ACCEPTED', describeFrame(local))
    await until('the same-node push during the outage', () => d.bodiesFrom(a.id).includes('same node, Redis down'), 10_000)
    const during = a.wire.sendTo(b.id, 'during the outage', 21)
    await elapse(1500) // the outage lasting a while is the point: the send above waits through it
    await redis.start() // same port, empty: the registry is gone

    // Every node re-registers itself and its sessions.
    await until(
      'the node set and the presence re-registered',
      async () => {
        const [nodes, presence] = await withRedis(redis.url, (r) =>
          Promise.all([r.smembers(`${cluster.name}:nodes`), r.hgetall(`${cluster.name}:presence`)]),
        )
        const where = (u: User): string | undefined => registryNodes(presence, u.id).join() || undefined
        return (
          nodes.length === 3 &&
          where(a) === 'n0' &&
          where(b) === 'n1' &&
          where(c) === 'n2' &&
          where(d) === 'n0' &&
          where(q) === undefined
        )
      },
      20_000,
    )
    const f = await during
    assert.equal(f.type, 'ACCEPTED', describeFrame(f))
    // Its status is 'queued' or 'stored', depending on whether the presence lookup ran before or after rb's node
    // re-registered; either way the message is in PostgreSQL and the re-registration wakes rb's session.
    console.log(`# sent during the Redis outage: ACCEPTED status ${(f as FrameOf<'ACCEPTED'>).status}`)
    await until('the message sent during the outage pushed on n1', () => b.bodiesFrom(a.id).includes('during the outage'), 15_000)
    // Deliveries across nodes resume, in both directions.
    const after1 = await c.wire.sendTo(a.id, 'after, c to a', 30)
    assert.equal((after1 as FrameOf<'ACCEPTED'>).status, SendStatusCode.queued, describeFrame(after1))
    const after2 = await a.wire.sendTo(b.id, 'after, a to b', 31)
    assert.equal((after2 as FrameOf<'ACCEPTED'>).status, SendStatusCode.queued, describeFrame(after2))
    await until('c → a after the restart', () => a.bodiesFrom(c.id).includes('after, c to a'), 10_000)
    await until('a → b after the restart', () => b.bodiesFrom(a.id).includes('after, a to b'), 10_000)
    assert.deepEqual(b.bodiesFrom(a.id), ['before', 'during the outage', 'after, a to b'], 'once each, in order')
    // What was queued in PostgreSQL before the outage is still there for its user.
    await q.moveTo(port(1))
    await until('the queued messages after the restart', () => q.delivers.length >= 3, 10_000)
    assert.deepEqual(q.bodiesFrom(a.id), ['queued 0', 'queued 1', 'queued 2'])
  })
})

// ------------------------------------------------------------------------------------------------ PostgreSQL down

describe('cluster e2e: PostgreSQL unreachable', { skip: unavailable }, () => {
  // The nodes reach PostgreSQL through a relay this test can cut; the shared server is not touched.
  const pgUrl = new URL(PG_URL)
  const relay = new TcpRelay(pgUrl.hostname, Number(pgUrl.port || 5432))
  let cluster: ProcCluster
  const users: User[] = []
  before(async () => {
    await relay.open()
    const viaRelay = new URL(PG_URL)
    viaRelay.host = `127.0.0.1:${relay.port}`
    cluster = await new ProcCluster({ nodes: 2, pgUrl: viaRelay.toString() }).start()
  })
  after(async () => {
    for (const u of users) u.wire.destroy()
    await cluster?.close()
    await relay.cut()
  })

  it('sends fail with an error that names the store while it is down, and succeed again once it is back', async () => {
    const [a, b] = await Promise.all([User.register(cluster.node(0).port, 'pa'), User.register(cluster.node(1).port, 'pb')])
    users.push(a, b)
    const ok = await a.wire.sendTo(b.id, 'before', 1, SendFlag.IDEMPOTENT)
    assert.equal(ok.type, 'ACCEPTED', describeFrame(ok))
    await relay.cut()
    const t0 = Date.now()
    const f = await a.wire.sendTo(b.id, 'while down', 2, SendFlag.IDEMPOTENT)
    assert.equal(f.type, 'ERROR', describeFrame(f))
    const e = f as FrameOf<'ERROR'>
    assert.equal(e.code, ErrorNumbers.SB_ERR_INTERNAL)
    assert.match(e.message, /PostgreSQL\) is unavailable/)
    assert.ok(Date.now() - t0 < 12_000, 'the send fails, it does not hang')
    assert.equal(a.wire.isClosed, false, 'the session stays')
    await relay.open() // the same port: PostgreSQL is back
    // The pool reconnects on demand: resend (the same msgId, idempotent) until it is accepted.
    let again: Frame | undefined
    await waitUntil(
      'the resend to be accepted',
      async () => (again = await a.wire.sendTo(b.id, 'while down', 2, SendFlag.IDEMPOTENT)).type === 'ACCEPTED',
      10_000,
      200,
    ).catch(() => undefined)
    assert.equal(again?.type, 'ACCEPTED', again && describeFrame(again))
    await until('the resent message on n1', () => b.bodiesFrom(a.id).includes('while down'), 10_000)
    assert.deepEqual(b.bodiesFrom(a.id), ['before', 'while down'])
  })
})
