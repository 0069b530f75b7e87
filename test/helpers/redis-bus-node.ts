/**
 * One RedisBus node in a process of its own, for tests that stop it with SIGSTOP (a node paused past its TTL:
 * a long GC, a suspended VM) and let it go on with SIGCONT. Deleting a node's key from the test does not pause it:
 * the node's next heartbeat puts the key back.
 *
 * argv: REDIS_URL prefix nodeId user heartbeatMs nodeTtlMs. Prints "ready" once the node is registered and the
 * user is online on it; runs until killed.
 */
import { RedisBus } from '../../src/bus/redis/redis-bus.js'

const [url, prefix, nodeId, user, heartbeatMs, nodeTtlMs] = process.argv.slice(2)
if (nodeTtlMs === undefined) throw new Error('usage: redis-bus-node.ts url prefix nodeId user heartbeatMs nodeTtlMs')
const bus = new RedisBus({ url, prefix, nodeId, heartbeatMs: Number(heartbeatMs), nodeTtlMs: Number(nodeTtlMs) })
await bus.start(() => {})
await bus.setOnline({ id: Number(user), name: `u${user}`, protocol: 'native', since: 1, lastSeen: 2 })
process.stdout.write('ready\n')
// The bus's heartbeat timer is unref'd: keep the process alive until the test kills it.
setInterval(() => {}, 1 << 30)
