/**
 * The group commit: owns the batch of store writes (copies, acks, read marks, last-seen) that the core's parts
 * submit, hands one batch at a time to store.commit(), and settles each caller once its batch is durable. The
 * stores do the I/O around the shared planner (src/store/plan.ts).
 */
import type { Store, StoreOp, StoreResult } from '../store/store.js'
import type { Logger } from './types.js'

interface Pending {
  op: StoreOp
  resolve: (r: StoreResult) => void
  reject: (err: unknown) => void
}

/**
 * Group commit: every store write asked for during one turn of the event loop goes into one
 * store.commit() — one transaction, one fsync. While a commit is under way the next batch gathers,
 * so under load batches grow instead of syncs multiplying. A caller's promise settles only once its
 * batch is durable.
 */
export class Committer {
  private pending: Pending[] = []
  private scheduled = false
  private running = false
  private idle: (() => void)[] = []
  readonly stats = { commits: 0, ops: 0, msTotal: 0, lastMs: 0, maxBatch: 0 }

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
  ) {}

  submit(op: StoreOp): Promise<StoreResult> {
    return new Promise((resolve, reject) => {
      this.pending.push({ op, resolve, reject })
      this.schedule()
    })
  }

  private schedule(): void {
    if (this.scheduled || this.running) return
    this.scheduled = true
    setImmediate(() => void this.flush())
  }

  private async flush(): Promise<void> {
    this.scheduled = false
    if (this.running || this.pending.length === 0) return this.settleIdle()
    this.running = true
    const batch = this.pending
    this.pending = []
    const t0 = performance.now()
    try {
      const results = await this.store.commit(batch.map((p) => p.op))
      const ms = performance.now() - t0
      this.stats.commits++
      this.stats.ops += batch.length
      this.stats.msTotal += ms
      this.stats.lastMs = ms
      if (batch.length > this.stats.maxBatch) this.stats.maxBatch = batch.length
      for (let i = 0; i < batch.length; i++) batch[i]!.resolve(results[i]!)
    } catch (err) {
      this.log.error({ err, ops: batch.length }, 'store commit failed')
      for (const p of batch) p.reject(err)
    } finally {
      this.running = false
      if (this.pending.length > 0) this.schedule()
      else this.settleIdle()
    }
  }

  private settleIdle(): void {
    if (this.running || this.scheduled || this.pending.length > 0) return
    const waiters = this.idle
    this.idle = []
    for (const w of waiters) w()
  }

  /** Resolves once everything submitted so far is committed. */
  drain(): Promise<void> {
    if (!this.running && !this.scheduled && this.pending.length === 0) return Promise.resolve()
    return new Promise((resolve) => this.idle.push(resolve))
  }
}
