/**
 * Heartbeats: a PING every interval keeps the session alive on the server, and a server silent for two
 * intervals and a bit is taken for gone (a half-open TCP connection says nothing), so the connection is
 * dropped and the reconnect begins.
 */
import { encode } from '../protocols/native/codec.js'
import type { Protocol } from './protocol.js'
import { unref } from './util.js'

export class Heartbeat {
  private timer: ReturnType<typeof setInterval> | undefined
  private ms = 30_000

  constructor(private readonly protocol: Protocol) {}

  start(ms: number): void {
    this.ms = ms
    this.stop()
    this.timer = setInterval(() => {
      const p = this.protocol
      if (Date.now() - p.lastRx > 2 * this.ms + 1000) {
        p.conn?.destroy()
        return
      }
      p.conn?.write(encode({ type: 'PING', corr: p.corrNext() }))
    }, ms)
    unref(this.timer)
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
  }
}
