/**
 * The seed 003 ZeroMQ gateway: off unless --zmq-pub-port or --zmq-rep-port is set (5556/5557 with --legacy).
 * It needs the zeromq package (a native addon), loaded only here, when the gateway starts.
 */
import { defineGateway, importPeer } from '../../plugin.js'

/** Parse "5558-5599" (the --zmq-endpoint-ports form) into [lo, hi]. */
export function parsePortRange(s: string): [number, number] {
  const m = /^\s*(\d{1,5})\s*-\s*(\d{1,5})\s*$/.exec(s)
  const lo = Number(m?.[1])
  const hi = Number(m?.[2])
  if (!m || lo < 1 || hi > 65535 || lo > hi) throw new Error(`--zmq-endpoint-ports must look like 5558-5599, not "${s}"`)
  return [lo, hi]
}

export const p003Gateway = defineGateway({
  name: 'p003',
  title: 'Seed 003 gateway (ZeroMQ; needs the zeromq package)',
  options: [
    {
      name: 'zmq-pub-port',
      kind: 'int',
      default: undefined,
      help: 'seed 003 ZeroMQ PUB port (off unless set; 5556 with --legacy)',
    },
    {
      name: 'zmq-rep-port',
      kind: 'int',
      default: undefined,
      help: 'seed 003 ZeroMQ REP port (off unless set; 5557 with --legacy)',
    },
    {
      name: 'zmq-endpoint-ports',
      kind: 'string',
      default: '5558-5599',
      help: 'seed 003 pool of peer-to-peer endpoint ports handed to clients',
    },
  ],
  legacy: { 'zmq-pub-port': 5556, 'zmq-rep-port': 5557 },
  enabled: (o) => o['zmq-pub-port'] !== undefined || o['zmq-rep-port'] !== undefined,
  async start(ctx) {
    const o = ctx.options
    const host = ctx.shared.host
    const endpointPorts = parsePortRange(o['zmq-endpoint-ports'])
    const { startP003 } = await importPeer(
      'zeromq',
      'the seed 003 gateway (--zmq-pub-port, --zmq-rep-port)',
      () => import('./server.js'),
    )
    const z = await startP003(ctx.broker, {
      host,
      pubPort: o['zmq-pub-port'] ?? 5556,
      repPort: o['zmq-rep-port'] ?? 5557,
      endpointPorts,
    })
    return {
      listeners: [
        { name: 'p003-pub', address: `tcp://${host}:${z.pubPort}`, port: z.pubPort },
        { name: 'p003-rep', address: `tcp://${host}:${z.repPort}`, port: z.repPort },
      ],
      connections: z.connections,
      close: z.close,
    }
  },
})
