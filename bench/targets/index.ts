/** Registry of targets by CLI name, with the address each one is reached on by default. */
import { aedesTarget } from './aedes.js'
import { mqttTarget } from './mqtt.js'
import { natsTarget } from './nats.js'
import { relayTarget } from './relay.js'
import { switchboardTarget } from './switchboard.js'
import { switchboardClusterTarget } from './switchboard-cluster.js'
import type { TargetFactory } from './target.js'

export interface TargetEntry {
  factory: TargetFactory
  host: string
  /** 0 = chosen by start() (harness-owned server). */
  port: number
  /** Peers are what Switchboard is compared against ("ratio vs best peer"). */
  peer: boolean
  /** The ceiling (the bare relay): throughput rows are also shown as a fraction of it. */
  ceiling?: boolean
}

export const targets: Record<string, TargetEntry> = {
  mosquitto: { factory: mqttTarget({ name: 'mosquitto', processName: 'mosquitto' }), host: '127.0.0.1', port: 1883, peer: true },
  nats: { factory: natsTarget, host: '127.0.0.1', port: 4222, peer: true },
  aedes: { factory: aedesTarget, host: '127.0.0.1', port: 0, peer: true },
  switchboard: { factory: switchboardTarget, host: '127.0.0.1', port: 0, peer: false },
  relay: { factory: relayTarget, host: '127.0.0.1', port: 0, peer: false, ceiling: true },
  // Cluster mode on the machine's PostgreSQL and Redis: --opt cluster.nodes=N, or cluster1..3 side by side.
  'switchboard-cluster': { factory: switchboardClusterTarget(), host: '127.0.0.1', port: 0, peer: false },
  cluster1: { factory: switchboardClusterTarget(1), host: '127.0.0.1', port: 0, peer: false },
  cluster2: { factory: switchboardClusterTarget(2), host: '127.0.0.1', port: 0, peer: false },
  cluster3: { factory: switchboardClusterTarget(3), host: '127.0.0.1', port: 0, peer: false },
}
