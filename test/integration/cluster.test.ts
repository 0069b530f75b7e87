/**
 * Three brokers in this process, one PostgreSQL schema and one Redis prefix between them, each with its own
 * node id: the points of issue 7 that hold at the Broker API (fake sinks stand for connections).
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { BrokerError } from '../../src/core/errors.js'
import { ReceiptStatus, type Outbound } from '../../src/core/types.js'
import { Cluster, FakeSink, clusterServicesUnavailable, ready } from './cluster-fixture.js'
import { until } from '../helpers/wait.js'

const unavailable = await clusterServicesUnavailable()

type MessageEv = Extract<Outbound, { type: 'message' }>
type ReceiptEv = Extract<Outbound, { type: 'receipt' }>
const message =
  (body: string) =>
  (ev: Outbound): ev is MessageEv =>
    ev.type === 'message' && ev.msg.body.toString() === body
const receipt =
  (msgId: number, status: number) =>
  (ev: Outbound): ev is ReceiptEv =>
    ev.type === 'receipt' && ev.receipt.msgId === msgId && ev.receipt.status === status

describe('cluster: three nodes over PostgreSQL and Redis', { skip: unavailable }, () => {
  let cluster: Cluster
  before(async () => {
    cluster = await new Cluster({ nodes: 3, broker: { ackTimeoutMs: 60_000 } }).start()
  })
  after(() => cluster?.close())

  it('a message from a user on node A reaches a user on node B live; the ack on B gives A a 200 receipt', async () => {
    const [A, B] = [cluster.node(0).broker, cluster.node(1).broker]
    const sa = new FakeSink()
    const sb = new FakeSink()
    const alice = await ready(A, A.register('alice', 'test', sa))
    const bob = await ready(B, B.register('bob', 'test', sb))
    const res = await A.send(alice.session, {
      to: { kind: 'name', name: 'bob' },
      body: Buffer.from('hi bob'),
      msgId: 1,
      receipt: true,
    })
    assert.equal(res.status, 'queued', 'bob is online on another node')
    assert.equal(res.seq, 1)
    const got = await sb.waitFor('the message on B', message('hi bob'))
    assert.equal(got.msg.from, alice.user.id)
    assert.equal(got.msg.fromName, 'alice')
    assert.equal(got.msg.seq, 1)
    assert.equal(await B.ack(bob.session, got.msg.seq), true)
    const r = await sa.waitFor('the 200 receipt on A', receipt(1, ReceiptStatus.DELIVERED))
    assert.equal(r.receipt.recipient, bob.user.id)
    assert.equal(r.receipt.recipientName, 'bob')
    assert.equal((await B.queueStats(bob.user.id)).count, 0)
  })

  it('order per sender and recipient is kept across nodes', async () => {
    const [A, C] = [cluster.node(0).broker, cluster.node(2).broker]
    const s1 = new FakeSink()
    const s2 = new FakeSink()
    const from = await ready(A, A.register('orderfrom', 'test', s1))
    const to = await ready(C, C.register('orderto', 'test', s2))
    const N = 100
    const results = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        A.send(from.session, { to: { kind: 'user', id: to.user.id }, body: Buffer.from(`m${i}`), msgId: i + 1 }),
      ),
    )
    assert.deepEqual(
      results.map((r) => r.seq),
      Array.from({ length: N }, (_, i) => i + 1),
      'accepted in order, gap-free',
    )
    await s2.waitFor('the last message', message(`m${N - 1}`))
    assert.deepEqual(
      s2.messages(),
      Array.from({ length: N }, (_, i) => `m${i}`),
    )
  })

  it('a message to a user offline everywhere is stored (202); it is pushed when the user logs in on another node', async () => {
    const [A, B, C] = [cluster.node(0).broker, cluster.node(1).broker, cluster.node(2).broker]
    const sa = new FakeSink()
    const sender = await ready(A, A.register('sender3', 'test', sa))
    const carol = await ready(C, C.register('carol', 'test', new FakeSink()))
    C.detach(carol.session)
    await until('carol offline everywhere', async () => !(await cluster.node(0).bus.isOnline(carol.user.id)))
    const res = await A.send(sender.session, {
      to: { kind: 'name', name: 'carol' },
      body: Buffer.from('while you were out'),
      msgId: 7,
      receipt: true,
    })
    assert.equal(res.status, 'stored')
    await sa.waitFor('the STORED receipt', receipt(7, ReceiptStatus.STORED))
    const sc = new FakeSink()
    await ready(B, B.login({ name: 'carol' }, carol.token, 'test', sc))
    const got = await sc.waitFor('the stored message on B', message('while you were out'))
    assert.equal(got.msg.seq, 1)
  })

  it('one session per user across the cluster: logging in on B ends the session on A', async () => {
    const [A, B, C] = [cluster.node(0).broker, cluster.node(1).broker, cluster.node(2).broker]
    const first = new FakeSink()
    const dave = await ready(A, A.register('dave', 'test', first))
    const second = new FakeSink()
    await ready(B, B.login({ id: dave.user.id }, dave.token, 'test', second))
    const closed = await first.waitClosed()
    assert.equal(closed.reason, 'replaced')
    assert.equal(A.sessionOf(dave.user.id), undefined)
    // A's setOffline after the kick must not take B's presence away. A called it when it ended the session; a
    // lookup on A's own Redis connection runs after it.
    assert.equal(await cluster.node(0).bus.isOnline(dave.user.id), true)
    assert.equal(await cluster.node(2).bus.isOnline(dave.user.id), true)
    assert.deepEqual(
      (await cluster.node(2).bus.online()).filter((p) => p.id === dave.user.id).map((p) => p.node),
      [cluster.node(1).nodeId],
    )
    // Messages now go to the session on B.
    const s = await ready(C, C.register('eve', 'test', new FakeSink()))
    await C.send(s.session, { to: { kind: 'name', name: 'dave' }, body: Buffer.from('to the new session') })
    await second.waitFor('the message on B', message('to the new session'))
    assert.equal(first.messages().length, 0)
  })

  it('names are unique under concurrent registration on three nodes, and ids are distinct', async () => {
    const brokers = cluster.nodes.map((n) => n.broker)
    const res = await Promise.allSettled(brokers.map((b) => b.register('zed', 'test', new FakeSink())))
    const ok = res.filter((r) => r.status === 'fulfilled')
    assert.equal(ok.length, 1, 'exactly one node registers the name')
    for (const r of res)
      if (r.status === 'rejected') {
        assert.ok(r.reason instanceof BrokerError)
        assert.equal(r.reason.code, 'SB_ERR_NAME_TAKEN')
      }
    const many = await Promise.all(
      Array.from({ length: 30 }, (_, i) => brokers[i % 3]!.register(`many${i}`, 'test', new FakeSink())),
    )
    assert.equal(new Set(many.map((m) => m.user.id)).size, 30)
  })

  it('a rename races a registration of the same name on another node: one wins', async () => {
    const [A, B] = [cluster.node(0).broker, cluster.node(1).broker]
    const r = await ready(A, A.register('renamer', 'test', new FakeSink()))
    const res = await Promise.allSettled([A.rename(r.session, 'hotname'), B.register('hotname', 'test', new FakeSink())])
    assert.equal(res.filter((x) => x.status === 'fulfilled').length, 1)
    assert.ok(res.some((x) => x.status === 'rejected' && (x.reason as BrokerError).code === 'SB_ERR_NAME_TAKEN'))
  })

  it('ALL reaches every online session on every node but the sender', async () => {
    const sinks = [new FakeSink(), new FakeSink(), new FakeSink()]
    const users = await Promise.all(
      cluster.nodes.map((n, i) => ready(n.broker, n.broker.register(`room${i}`, 'test', sinks[i]!))),
    )
    const res = await cluster.node(1).broker.send(users[1]!.session, { to: { kind: 'all' }, body: Buffer.from('hello room') })
    assert.equal(res.status, 'delivered')
    const a = await sinks[0]!.waitFor('the room message on A', message('hello room'))
    await sinks[2]!.waitFor('the room message on C', message('hello room'))
    assert.equal(a.msg.from, users[1]!.user.id)
    // A room message from A, sent after A had this one, reaches B on the same path: no echo came before it.
    await cluster.node(0).broker.send(users[0]!.session, { to: { kind: 'all' }, body: Buffer.from('marker') })
    await sinks[1]!.waitFor('the marker on B', message('marker'))
    assert.deepEqual(sinks[1]!.messages(), ['marker'], 'not echoed to the sender')
  })
})

describe('cluster: a node dies', { skip: unavailable }, () => {
  let cluster: Cluster
  before(async () => {
    cluster = await new Cluster({ nodes: 3, heartbeatMs: 100, nodeTtlMs: 400 }).start()
  })
  after(() => cluster?.close())

  it("the survivors clean up the dead node's sessions, tell watchers, and store for its users", async () => {
    const [A, B] = [cluster.node(0).broker, cluster.node(1).broker]
    const watcher = new FakeSink()
    const w = await ready(A, A.register('watcher', 'test', watcher))
    A.watchPresence(w.session, true)
    const victimSink = new FakeSink()
    const victim = await ready(cluster.node(2).broker, cluster.node(2).broker.register('victim', 'test', victimSink))
    assert.equal(await cluster.node(1).bus.isOnline(victim.user.id), true)
    await cluster.node(2).kill()
    const off = await watcher.waitFor(
      'the offline presence of the victim',
      (ev) => ev.type === 'presence' && !ev.online && ev.user.id === victim.user.id,
      3000,
    )
    assert.equal(off.type, 'presence')
    assert.equal(await cluster.node(0).bus.isOnline(victim.user.id), false)
    assert.equal(await cluster.node(1).bus.isOnline(victim.user.id), false)
    // Accepted messages for the victim are stored, and delivered when it comes back on a survivor.
    const res = await A.send(w.session, {
      to: { kind: 'name', name: 'victim' },
      body: Buffer.from('after the crash'),
      msgId: 9,
      receipt: true,
    })
    assert.equal(res.status, 'stored')
    const back = new FakeSink()
    await ready(B, B.login({ name: 'victim' }, victim.token, 'test', back))
    await back.waitFor('the message after reconnecting', message('after the crash'))
  })
})
