/**
 * The cluster bus: `--bus redis://host:port/db`, keys and channels prefixed with --cluster-name. It needs
 * the ioredis package, loaded only when this bus is opened.
 */
import type { BusBackend } from '../../plugin.js'
import { importPeer } from '../../plugin.js'

export const redisBackend: BusBackend = {
  schemes: ['redis'],
  usage: 'a redis:// URL (cluster)',
  async open(url, opts) {
    const { RedisBus } = await importPeer('ioredis', 'the Redis bus (--bus redis://…)', () => import('./redis-bus.js'))
    return new RedisBus({ url, nodeId: opts.nodeId, prefix: opts.clusterName, logger: opts.logger })
  },
}
