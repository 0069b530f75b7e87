/**
 * NATS core target (no JetStream) over the `nats` client.
 *
 * NATS core has no per-message acknowledgement, so "direct + ack" needs an analogue. Two modes,
 * chosen with `--opt nats.ack=flush|reply`:
 *  - flush (default): PUB to `bench.<run>.d.<to>`, then `flush()` (PING → PONG). The server handles a
 *    connection's protocol in order and routes a PUB to the subscribers' outbound buffers before it
 *    reads the next op, so the PONG means "server accepted and routed it" — the closest match to an
 *    MQTT PUBACK (broker accepted it), and like PUBACK it says nothing about the receiver.
 *  - reply: request/reply; the receiving client answers each message, so the "ack" is end-to-end and
 *    costs an extra hop. Stronger than PUBACK; use it to compare with end-to-end acks.
 * broadcast: core PUB to `bench.<run>.all`, all receivers subscribed (at-most-once, like MQTT QoS 0).
 */
import { connect, Empty } from 'nats'
import type { NatsConnection } from 'nats'
import type { BenchClient, BenchTarget, ConnectOptions, MessageKind, TargetFactory } from './target.js'
import { pgrep } from '../lib/proc.js'

type AckMode = 'flush' | 'reply'

class NatsBenchClient implements BenchClient {
  private listener: (kind: MessageKind, body: Buffer) => void = () => {}

  constructor(
    readonly id: string,
    private readonly nc: NatsConnection,
    private readonly prefix: string,
    private readonly ack: AckMode,
    opts: ConnectOptions,
  ) {
    if (opts.receiveDirect) {
      nc.subscribe(`${prefix}.d.${id}`, {
        callback: (err, msg) => {
          if (err !== null) return
          this.listener('direct', Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength))
          if (msg.reply) msg.respond(Empty)
        },
      })
    }
    if (opts.receiveBroadcast) {
      nc.subscribe(`${prefix}.all`, {
        callback: (err, msg) => {
          if (err === null) this.listener('broadcast', Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength))
        },
      })
    }
  }

  async sendDirect(to: string, body: Buffer): Promise<void> {
    const subject = `${this.prefix}.d.${to}`
    if (this.ack === 'reply') {
      await this.nc.request(subject, body, { timeout: 10_000 })
    } else {
      this.nc.publish(subject, body)
      await this.nc.flush()
    }
  }

  publishBroadcast(body: Buffer): Promise<void> {
    this.nc.publish(`${this.prefix}.all`, body)
    return Promise.resolve()
  }

  onMessage(cb: (kind: MessageKind, body: Buffer) => void): void {
    this.listener = cb
  }

  async close(): Promise<void> {
    await this.nc.close()
  }
}

export const natsTarget: TargetFactory = (params) => {
  const ackOpt = params.options['nats.ack'] ?? 'flush'
  if (ackOpt !== 'flush' && ackOpt !== 'reply') throw new Error(`nats.ack must be flush|reply, got ${ackOpt}`)
  const ack: AckMode = ackOpt
  const prefix = `bench.${params.runId}`
  return {
    name: 'nats',
    semantics:
      ack === 'flush'
        ? 'direct = core PUB + flush, ack = PONG (server accepted+routed); broadcast = core PUB'
        : 'direct = request/reply, ack = receiver reply (end-to-end); broadcast = core PUB',
    params: () => params,
    serverPid: () => pgrep('nats-server'),
    async connect(id: string, opts: ConnectOptions): Promise<BenchClient> {
      const nc = await connect({
        servers: `${params.host}:${params.port}`,
        name: `bench-${params.runId}-${id}`,
        reconnect: false,
        pingInterval: 120_000,
        timeout: 30_000,
        // Skips capturing a stack per request; a client-side cost that would only load the generator.
        noAsyncTraces: true,
      })
      const client = new NatsBenchClient(id, nc, prefix, ack, opts)
      // Core SUB has no ack; a PING/PONG round trip proves the server has registered the subscriptions.
      if (opts.receiveDirect || opts.receiveBroadcast) await nc.flush()
      return client
    },
  }
}
