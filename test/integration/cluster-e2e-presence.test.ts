/**
 * Racing logins and the presence registry (issue 7: "one session per user across the cluster").
 *
 * Two logins of one user on nodes A and B at nearly the same time: each node publishes a kick and writes the
 * user's presence. The kicks keep the newer session (B). But the two presence writes travel on different
 * connections, so the older login's write can land last; A then ends its session on B's kick and removes the
 * entry because it names A — and the user, whose session lives on B, looks offline to the whole cluster:
 * messages to it are answered 202 and its session is never woken. The registry must keep the newer entry.
 * These cases replay that interleaving on the bus directly, so they are deterministic.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { RedisBus } from '../../src/bus/redis/redis-bus.js'
import type { PresenceInfo } from '../../src/core/types.js'
import { clusterServicesUnavailable, deleteKeys, REDIS_URL } from './cluster-e2e-fixture.js'

const unavailable = await clusterServicesUnavailable()

const presence = (node: string, since: number): PresenceInfo => ({
  id: 42,
  name: 'racer',
  protocol: 'native',
  since,
  lastSeen: since,
  node,
  device: 1,
})

describe('presence under racing logins', { skip: unavailable }, () => {
  it('an older login written last does not replace the newer one, and its removal leaves the newer one', async (t) => {
    const prefix = `sbtest:presence:${process.pid}:${Date.now().toString(36)}`
    const a = new RedisBus({ url: REDIS_URL, prefix, nodeId: 'node-a' })
    const b = new RedisBus({ url: REDIS_URL, prefix, nodeId: 'node-b' })
    await a.start(() => {})
    await b.start(() => {})
    t.after(async () => {
      await a.close()
      await b.close()
      await deleteKeys(REDIS_URL, prefix)
    })
    await b.setOnline(presence('node-b', 2000)) // the newer login's write lands first…
    await a.setOnline(presence('node-a', 1000)) // …the older one's last
    assert.equal(await b.nodeOf(42, 1), 'node-b', 'the registry names the newer session')
    await a.setOffline(42, 1) // node A ends its (older) session after B's kick
    assert.equal(await a.isOnline(42), true, 'the user is still online, on B')
    assert.equal(await a.nodeOf(42, 1), 'node-b')
    // Same time on both nodes: the tie goes to the greater node id, as the kick decides it.
    await a.setOnline(presence('node-a', 2000))
    assert.equal(await a.nodeOf(42, 1), 'node-b')
    // A newer login anywhere replaces the entry; a rename (same session, same since) rewrites it.
    await a.setOnline(presence('node-a', 3000))
    assert.equal(await b.nodeOf(42, 1), 'node-a')
    await a.setOnline({ ...presence('node-a', 3000), name: 'racer2' })
    const all = await b.online()
    assert.deepEqual(
      all.map((p) => [p.name, p.node]),
      [['racer2', 'node-a']],
    )
  })

  it("the race is per device: an older write of one device leaves the user's other devices alone", async (t) => {
    const prefix = `sbtest:presence:${process.pid}:${Date.now().toString(36)}:devices`
    const a = new RedisBus({ url: REDIS_URL, prefix, nodeId: 'node-a' })
    const b = new RedisBus({ url: REDIS_URL, prefix, nodeId: 'node-b' })
    await a.start(() => {})
    await b.start(() => {})
    t.after(async () => {
      await a.close()
      await b.close()
      await deleteKeys(REDIS_URL, prefix)
    })
    // Device 2 is on A, newer than anything else; device 1 races as above.
    await a.setOnline({ ...presence('node-a', 5000), device: 2 })
    await b.setOnline(presence('node-b', 2000))
    await a.setOnline(presence('node-a', 1000))
    assert.equal(await a.nodeOf(42, 1), 'node-b', "device 2's newer since does not make device 1's older write win")
    assert.equal(await b.nodeOf(42, 2), 'node-a')
    assert.deepEqual(await b.nodesOf(42), ['node-a', 'node-b'])
    await a.setOffline(42, 1)
    await a.setOffline(42, 2)
    assert.equal(await a.isOnline(42), true, 'device 1, on B, keeps the user online')
    await b.setOffline(42, 1)
    assert.equal(await a.isOnline(42), false)
  })
})
