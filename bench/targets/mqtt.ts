/**
 * MQTT 3.1.1 target (Mosquitto and Aedes) over the `mqtt` client.
 *  direct:    QoS 1 PUBLISH to `bench/<run>/d/<to>`; the receiver is subscribed at QoS 1.
 *             The ack is the broker's PUBACK, i.e. the broker took the message, not that the peer got it.
 *  broadcast: QoS 0 PUBLISH to `bench/<run>/all`; every receiver subscribed at QoS 0.
 */
import mqtt from 'mqtt'
import type { MqttClient } from 'mqtt'
import type { BenchClient, BenchTarget, ConnectOptions, MessageKind, TargetFactory, TargetParams } from './target.js'
import { pgrep } from '../lib/proc.js'

export interface MqttTargetOptions {
  name: string
  /** Process name for `pgrep -x` when the broker is a system service. */
  processName?: string
  /** For harness-owned brokers (Aedes). */
  start?: () => Promise<{ port: number; pid: number }>
  stop?: () => Promise<void>
}

class MqttBenchClient implements BenchClient {
  private listener: (kind: MessageKind, body: Buffer) => void = () => {}

  constructor(
    readonly id: string,
    private readonly client: MqttClient,
    private readonly prefix: string,
  ) {
    const directTopic = `${prefix}/d/${id}`
    const broadcastTopic = `${prefix}/all`
    client.on('message', (topic, payload) => {
      if (topic === directTopic) this.listener('direct', payload)
      else if (topic === broadcastTopic) this.listener('broadcast', payload)
    })
  }

  async sendDirect(to: string, body: Buffer): Promise<void> {
    await this.client.publishAsync(`${this.prefix}/d/${to}`, body, { qos: 1 })
  }

  async publishBroadcast(body: Buffer): Promise<void> {
    await this.client.publishAsync(`${this.prefix}/all`, body, { qos: 0 })
  }

  onMessage(cb: (kind: MessageKind, body: Buffer) => void): void {
    this.listener = cb
  }

  async close(): Promise<void> {
    await this.client.endAsync(true)
  }
}

export function mqttTarget(o: MqttTargetOptions): TargetFactory {
  return (initial: TargetParams): BenchTarget => {
    let params = initial
    let ownedPid: number | undefined
    const prefix = `bench/${initial.runId}`
    const target: BenchTarget = {
      name: o.name,
      semantics: 'direct = QoS1 publish to per-receiver topic, ack = PUBACK (broker accepted); broadcast = QoS0',
      params: () => params,
      serverPid: () => ownedPid ?? (o.processName === undefined ? undefined : pgrep(o.processName)),
      async connect(id: string, opts: ConnectOptions): Promise<BenchClient> {
        const client = await mqtt.connectAsync({
          host: params.host,
          port: params.port,
          protocolVersion: 4,
          clientId: `bench-${params.runId}-${id}`,
          clean: true,
          keepalive: 120,
          // A benchmark must see failures, not paper over them with reconnects.
          reconnectPeriod: 0,
          connectTimeout: 30_000,
        })
        const subs: Record<string, { qos: 0 | 1 }> = {}
        if (opts.receiveDirect) subs[`${prefix}/d/${id}`] = { qos: 1 }
        if (opts.receiveBroadcast) subs[`${prefix}/all`] = { qos: 0 }
        if (Object.keys(subs).length > 0) {
          const granted = await client.subscribeAsync(subs)
          // 0x80 = failure (MQTT 3.1.1 §3.9.3)
          if (granted.some((g) => g.qos === 128)) throw new Error(`${o.name}: subscription refused for ${id}`)
        }
        return new MqttBenchClient(id, client, prefix)
      },
    }
    const startFn = o.start
    const stopFn = o.stop
    if (startFn !== undefined) {
      target.start = async () => {
        const s = await startFn()
        ownedPid = s.pid
        params = { ...params, port: s.port }
      }
    }
    if (stopFn !== undefined) {
      target.stop = async () => {
        await stopFn()
        ownedPid = undefined
      }
    }
    return target
  }
}
