/**
 * The ack timers: a pushed message asking for a receipt that is not acknowledged within ackTimeoutMs gives its
 * sender a NOT_YET (300). One timer for all of them, since every deadline is now + the same timeout: the queue is
 * in deadline order and only its head is scheduled.
 */
import type { Session } from './session.js'

export class AckTimers {
  private readonly queue: { at: number; session: Session; seq: number }[] = []
  private head = 0
  private timer: NodeJS.Timeout | undefined

  constructor(
    private readonly timeoutMs: number,
    private readonly now: () => number,
    /** A deadline passed: the message `seq` handed to `session` is not acknowledged yet (if still in flight). */
    private readonly due: (session: Session, seq: number, now: number) => void,
  ) {}

  arm(s: Session, seq: number): void {
    this.queue.push({ at: this.now() + this.timeoutMs, session: s, seq })
    if (this.timer === undefined) this.schedule()
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer)
  }

  private schedule(): void {
    const head = this.queue[this.head]
    if (head === undefined) {
      this.queue.length = 0
      this.head = 0
      this.timer = undefined
      return
    }
    this.timer = setTimeout(() => this.fire(), Math.max(0, head.at - this.now()))
    this.timer.unref()
  }

  private fire(): void {
    const now = this.now()
    while (this.head < this.queue.length) {
      const t = this.queue[this.head]!
      if (t.at > now) break
      this.head++
      this.due(t.session, t.seq, now)
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head)
      this.head = 0
    }
    this.schedule()
  }
}
