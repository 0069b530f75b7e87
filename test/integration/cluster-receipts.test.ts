/**
 * A receipt for a sender online on another node travels live by the bus (issue 12, aim 5): it is not stored in the
 * sender's log unless no node holding the sender is there to push it. Three brokers in this process over one
 * PostgreSQL schema and one Redis prefix; a long node TTL, so that a killed node stays in the registry while a test
 * sends to it.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { Redis } from 'ioredis'
import { ReceiptStatus, type Outbound, type Receipt } from '../../src/core/types.js'
import { encodeBus } from '../../src/bus/redis/bus-codec.js'
import { Cluster, FakeSink, REDIS_URL, clusterServicesUnavailable, ready } from './cluster-fixture.js'
import { until } from '../helpers/wait.js'

const unavailable = await clusterServicesUnavailable()

type ReceiptEv = Extract<Outbound, { type: 'receipt' }>
const receipt =
  (msgId: number, status: number) =>
  (ev: Outbound): ev is ReceiptEv =>
    ev.type === 'receipt' && ev.receipt.msgId === msgId && ev.receipt.status === status
const message = (body: string) => (ev: Outbound) => ev.type === 'message' && ev.msg.body.toString() === body

describe('cluster: receipts for a sender on another node', { skip: unavailable }, () => {
  let cluster: Cluster
  before(async () => {
    cluster = await new Cluster({ nodes: 3, heartbeatMs: 1000, nodeTtlMs: 60_000, broker: { ackTimeoutMs: 60_000 } }).start()
  })
  after(() => cluster?.close())

  it('the 200 receipt reaches the sender on its node live: nothing is written to its log', async () => {
    const [A, B] = [cluster.node(0).broker, cluster.node(1).broker]
    const sa = new FakeSink()
    const sb = new FakeSink()
    const alice = await ready(A, A.register('r-alice', 'test', sa))
    const bob = await ready(B, B.register('r-bob', 'test', sb))
    await until('B knows alice is on A', () => cluster.node(1).bus.knownHolders(alice.user.id).length === 1)
    const res = await A.send(alice.session, {
      to: { kind: 'user', id: bob.user.id },
      body: Buffer.from('live'),
      msgId: 1,
      receipt: true,
    })
    assert.equal(res.status, 'queued')
    const got = (await sb.waitFor('the message on B', message('live'))) as Extract<Outbound, { type: 'message' }>
    assert.equal(await B.ack(bob.session, got.msg.seq), true)
    const r = (await sa.waitFor('the 200 receipt on A', receipt(1, ReceiptStatus.DELIVERED))) as ReceiptEv
    assert.equal(r.seq, 0, 'pushed live, not a queued receipt (which has a seq to acknowledge)')
    assert.equal(r.receipt.recipient, bob.user.id)
    assert.equal(r.receipt.seq, got.msg.seq)
    // alice's log holds her sent copy and nothing else: no receipt waits for an acknowledgement.
    assert.equal((await A.queueStats(alice.user.id)).count, 0)
    const log = await cluster.node(0).store.readLog(alice.user.id, 0, 10, Date.now())
    assert.deepEqual(
      log.map((m) => m.kind),
      ['text'],
    )
  })

  it('a receipt that reaches a node the sender has left is stored there, and delivered when the sender is back', async () => {
    const [B, C] = [cluster.node(1), cluster.node(2)]
    const sc = new FakeSink()
    const carol = await ready(C.broker, C.broker.register('r-carol', 'test', sc))
    C.broker.detach(carol.session)
    await until('carol offline', async () => !(await B.bus.isOnline(carol.user.id)))
    // What a node whose copy of the registry still named C would send it.
    const about: Receipt = {
      msgId: 42,
      status: ReceiptStatus.DELIVERED,
      recipient: 1,
      recipientName: 'someone',
      seq: 3,
      at: Date.now(),
    }
    const redis = new Redis(REDIS_URL)
    try {
      // First one that its publisher also pushed to a session of carol's: a node without her drops it.
      const pushed = { ...about, msgId: 41 }
      await redis.publish(
        `${C.bus.prefix}:bus:${C.nodeId}`,
        encodeBus('a-node-that-knew-no-better', { type: 'receipt', to: carol.user.id, receipt: pushed, pushed: true }),
      )
      const received = await redis.publish(
        `${C.bus.prefix}:bus:${C.nodeId}`,
        encodeBus('a-node-that-knew-no-better', { type: 'receipt', to: carol.user.id, receipt: about }),
      )
      assert.equal(received, 1)
    } finally {
      redis.disconnect()
    }
    await until('the receipt is in carol’s log', async () => (await C.broker.queueStats(carol.user.id)).count === 1)
    const back = new FakeSink()
    await ready(B.broker, B.broker.login({ name: 'r-carol' }, carol.token, 'test', back))
    const r = (await back.waitFor('the stored receipt on B', receipt(42, ReceiptStatus.DELIVERED))) as ReceiptEv
    assert.ok(r.seq > 0, 'a queued receipt, acknowledged by its seq')
    assert.deepEqual(r.receipt, about)
    assert.equal(back.events.filter((ev) => ev.type === 'receipt').length, 1, 'the pushed one was not stored')
  })

  it('a receipt that no node receives (the holder died, not reaped yet) comes back and is stored by its own node', async () => {
    const [A, C] = [cluster.node(0), cluster.node(2)]
    const sc = new FakeSink()
    const sa = new FakeSink()
    const dan = await ready(C.broker, C.broker.register('r-dan', 'test', sc))
    const erin = await ready(A.broker, A.broker.register('r-erin', 'test', sa))
    await until('A knows dan is on C', () => A.bus.knownHolders(dan.user.id).includes(C.nodeId))
    const res = await C.broker.send(dan.session, {
      to: { kind: 'user', id: erin.user.id },
      body: Buffer.from('before'),
      msgId: 5,
      receipt: true,
    })
    assert.equal(res.status, 'queued')
    const got = (await sa.waitFor('the message on A', message('before'))) as Extract<Outbound, { type: 'message' }>
    await C.kill()
    assert.deepEqual(A.bus.knownHolders(dan.user.id), [C.nodeId], 'the dead node is not reaped yet')
    const returned = A.bus.counters.returnedReceipts
    assert.equal(await A.broker.ack(erin.session, got.msg.seq), true)
    await until('the receipt came back to A', () => A.bus.counters.returnedReceipts === returned + 1)
    await until('the receipt is in dan’s log', async () => (await A.broker.queueStats(dan.user.id)).count === 1)
    const back = new FakeSink()
    await ready(A.broker, A.broker.login({ name: 'r-dan' }, dan.token, 'test', back))
    const r = (await back.waitFor('the stored receipt', receipt(5, ReceiptStatus.DELIVERED))) as ReceiptEv
    assert.ok(r.seq > 0)
    assert.equal(r.receipt.recipient, erin.user.id)
  })
})
