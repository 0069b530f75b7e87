/**
 * Devices of one user on different cluster nodes (issue 11 item 8), at the Broker API: three brokers in this
 * process on one Redis prefix and one store, fake sinks for connections. dana has a device on node A (the one she
 * registered with) and one on node B (a password login); carol writes to her from node C.
 *
 * It runs over a memory store shared in-process (the bus and the core's cluster paths, Redis alone) and over
 * PostgreSQL (the real deployment).
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { ReceiptStatus, type Outbound } from '../../src/core/types.js'
import type { Broker } from '../../src/core/broker.js'
import type { Session } from '../../src/core/session.js'
import { Cluster, FakeSink, clusterServicesUnavailable, ready } from './cluster-fixture.js'
import { until } from '../helpers/wait.js'

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
const presence = (user: number, online: boolean) => (ev: Outbound) =>
  ev.type === 'presence' && ev.user.id === user && ev.online === online

const PASSWORD = 'dana-pass-phrase'

const variants = [
  { store: 'memory' as const, unavailable: await clusterServicesUnavailable({ pg: false }) },
  { store: 'postgres' as const, unavailable: await clusterServicesUnavailable() },
]

for (const { store, unavailable } of variants) {
  describe(`cluster: one user's devices on two nodes (${store} store)`, { skip: unavailable }, () => {
    let cluster: Cluster
    let A: Broker, B: Broker, C: Broker
    const carolSink = new FakeSink()
    const sinkA = new FakeSink()
    const sinkB = new FakeSink()
    let carol: Session
    let dana: { id: number; onA: Session; onB: Session; tokenB: string }

    /** What the registry says: the nodes holding a device of dana, and how `who` on `node` counts her. */
    const registry = async (node: Broker = C): Promise<{ nodes: string[]; who: number[] }> => ({
      nodes: await cluster.node(2).bus.nodesOf(dana.id),
      who: (await node.who(node === C ? carol : dana.onA)).filter((p) => p.id === dana.id).map((p) => p.devices ?? 0),
    })

    before(async () => {
      cluster = await new Cluster({ nodes: 3, store, broker: { ackTimeoutMs: 60_000 } }).start()
      ;[A, B, C] = [cluster.node(0).broker, cluster.node(1).broker, cluster.node(2).broker]
      carol = (await ready(C, C.register('carol', 'test', carolSink))).session
      C.watchPresence(carol, true)
      const d = await ready(A, A.register('dana', 'test', sinkA, 'push', { password: PASSWORD }))
      const onB = await ready(B, B.loginPassword('dana', PASSWORD, 'test', sinkB))
      dana = { id: d.user.id, onA: d.session, onB: onB.session, tokenB: onB.token }
    })
    after(() => cluster?.close())

    it('the registry has a device on A and one on B; who lists the user once, with 2 devices, on every node', async () => {
      assert.notEqual(dana.onA.device, dana.onB.device)
      assert.deepEqual(await registry(), { nodes: ['node-a', 'node-b'], who: [2] })
      assert.deepEqual((await registry(A)).who, [2], 'the same answer on a node holding one of the devices')
      assert.equal(await cluster.node(2).bus.isOnline(dana.id), true)
      assert.equal(carolSink.events.filter(presence(dana.id, true)).length, 1, 'carol was told dana came online, once')
    })

    it('a message to the user is pushed to both devices; the first ack gives the sender one 200', async () => {
      const res = await C.send(carol, {
        to: { kind: 'user', id: dana.id },
        body: Buffer.from('to both'),
        msgId: 1,
        receipt: true,
      })
      assert.equal(res.status, 'queued', 'dana is online (on other nodes)')
      const [a, b] = await Promise.all([
        sinkA.waitFor('the message on A', message('to both')),
        sinkB.waitFor('the message on B', message('to both')),
      ])
      assert.equal(a.msg.seq, b.msg.seq, "one message of the user's log")
      assert.equal(await A.ack(dana.onA, a.msg.seq), true)
      await carolSink.waitFor('the 200', receipt(1, ReceiptStatus.DELIVERED))
      assert.equal(await B.ack(dana.onB, b.msg.seq), true, 'the second device acknowledges it too (its own cursor)')
      // A barrier: a second message acknowledged on B first. B tells its 200 after anything it told for the first
      // message, and carol's receipts come in order: once this one is here, a second 200 for msgId 1 would be too.
      await C.send(carol, { to: { kind: 'user', id: dana.id }, body: Buffer.from('barrier'), msgId: 2, receipt: true })
      const b2 = await sinkB.waitFor('the barrier on B', message('barrier'))
      await B.ack(dana.onB, b2.msg.seq)
      await carolSink.waitFor('the barrier 200', receipt(2, ReceiptStatus.DELIVERED))
      assert.equal(carolSink.events.filter(receipt(1, ReceiptStatus.DELIVERED)).length, 1, 'exactly one 200')
      const a2 = await sinkA.waitFor('the barrier on A', message('barrier'))
      await A.ack(dana.onA, a2.msg.seq)
    })

    it("a receipt reaches the sending device on another node while a device of the sender is on the recipient's node", async () => {
      // erin is on A, where dana has a device; dana sends from her device on B.
      const erinSink = new FakeSink()
      const erin = (await ready(A, A.register(`erin-${store}`, 'test', erinSink))).session
      const res = await B.send(dana.onB, {
        to: { kind: 'user', id: erin.user.id },
        body: Buffer.from('from B'),
        msgId: 11,
        receipt: true,
      })
      assert.equal(res.status, 'queued')
      const got = (await erinSink.waitFor('the message on A', message('from B'))) as MessageEv
      assert.equal(await A.ack(erin, got.msg.seq), true)
      const onB = (await sinkB.waitFor('the 200 on the sending device (B)', receipt(11, ReceiptStatus.DELIVERED))) as ReceiptEv
      const onA = (await sinkA.waitFor('the 200 on the device on A', receipt(11, ReceiptStatus.DELIVERED))) as ReceiptEv
      assert.equal(onB.seq, 0, 'live')
      assert.equal(onA.seq, 0, 'live')
      assert.equal((await A.queueStats(dana.id)).count, 0, 'nothing stored for dana')
    })

    it('revoking the device on B from node A ends its session on B; its token is refused; the user stays online', async () => {
      await A.revokeDevice(dana.onA, dana.onB.device)
      const closed = await sinkB.waitClosed()
      assert.equal(closed.reason, 'revoked')
      await until('B to take its device out of the registry', async () => (await registry()).nodes.join() === 'node-a')
      assert.deepEqual(await registry(), { nodes: ['node-a'], who: [1] })
      await assert.rejects(B.login({ id: dana.id }, dana.tokenB, 'test', new FakeSink()), { code: 'SB_ERR_AUTH' })
      assert.equal(await cluster.node(1).bus.isOnline(dana.id), true, 'her device on A')
    })

    it('one device logging out leaves the user online; the last one takes it offline, announced once', async () => {
      const sinkB2 = new FakeSink()
      const onB2 = (await ready(B, B.loginPassword('dana', PASSWORD, 'test', sinkB2))).session
      assert.deepEqual(await registry(), { nodes: ['node-a', 'node-b'], who: [2] })
      A.end(dana.onA, 'ended', 'goodbye')
      await until('A to take its device out of the registry', async () => (await registry()).nodes.join() === 'node-b')
      assert.equal(await cluster.node(2).bus.isOnline(dana.id), true, 'still online, on B')
      assert.deepEqual((await C.who(carol)).find((p) => p.id === dana.id)?.devices, 1)
      B.end(onB2, 'ended', 'goodbye')
      await carolSink.waitFor('dana offline', presence(dana.id, false))
      assert.equal(await cluster.node(2).bus.isOnline(dana.id), false)
      assert.deepEqual(await registry(), { nodes: [], who: [] })
      // A barrier for anything A said when its device left: a message from A to carol, which A wakes C for after.
      const erin = await ready(A, A.register('erin', 'test', new FakeSink()))
      await A.send(erin.session, { to: { kind: 'user', id: carol.user.id }, body: Buffer.from('after'), msgId: 1 })
      await carolSink.waitFor('the message from A', message('after'))
      assert.equal(carolSink.events.filter(presence(dana.id, false)).length, 1, 'one offline event, from the last device')
    })
  })
}
