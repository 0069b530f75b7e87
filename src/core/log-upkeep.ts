/**
 * The log's upkeep and its pages: what the reaper does to the stored logs — messages past their expiry (senders
 * get 410), held messages now due (released into their recipients' logs; 202 when nobody here takes them),
 * retention (age and count, applied once a minute), old dedupe keys (once an hour) — and a page of a user's
 * history, newest first, of a peer, a topic or everything. Delivery (delivery.ts) owns what moves messages to
 * sessions; this part only reads and trims the logs.
 */
import { BrokerError } from './errors.js'
import { describe, guard, PAGE, type Core } from './context.js'
import type { Directory } from './directory.js'
import type { Receipts } from './receipts.js'
import type { Session } from './session.js'
import { Flag, ReceiptStatus, type Address, type Message } from './types.js'
import type { RetentionPolicy } from '../store/store.js'

/** How often the reaper applies retention. */
const RETAIN_EVERY_MS = 60_000
/** How often old dedupe keys are pruned. */
const PRUNE_EVERY_MS = 3600_000

export class LogUpkeep {
  private lastPrune = 0
  private lastRetain = 0

  constructor(
    private readonly core: Core,
    private readonly directory: Directory,
    private readonly receipts: Receipts,
    /** Offers a released message to its recipient's sessions here; false when none took it. */
    private readonly committed: (m: Message) => boolean,
  ) {}

  /** A page of the session's user's history, newest first (peer or topic or everything). */
  async history(
    s: Session,
    q: { with?: Address | undefined; before?: number; limit?: number },
  ): Promise<{ messages: Message[]; more: boolean }> {
    guard(this.core, s)
    const limit = Math.max(1, Math.min(q.limit ?? 50, PAGE))
    const query: { peer?: number; topic?: string; before: number; limit: number } = { before: q.before ?? 0, limit: limit + 1 }
    const w = q.with
    if (w !== undefined && w.kind === 'topic') query.topic = this.directory.normalizeTopic(w.topic)
    else if (w !== undefined && (w.kind === 'user' || w.kind === 'name')) {
      const u = await this.directory.resolveUser(w)
      if (u === undefined) throw new BrokerError('SB_ERR_UNKNOWN_RECIPIENT', `no such user: ${describe(w)}`)
      query.peer = u.id
    } else if (w !== undefined && w.kind !== 'all')
      throw new BrokerError('SB_ERR_UNSUPPORTED', 'history is of a user, a topic, or everything')
    const rows = await this.core.store.history(s.user.id, query)
    return { messages: rows.slice(0, limit), more: rows.length > limit }
  }

  /** Expired messages (senders get 410), held messages now due (released into their queues), old dedupe keys. */
  async reap(now: number, dedupeRetentionMs: number, retention?: RetentionPolicy): Promise<void> {
    const { store } = this.core
    // Retention is bulk work on a scale of days: once a minute is plenty, and costs nothing between.
    if (retention !== undefined && now - this.lastRetain >= RETAIN_EVERY_MS) {
      this.lastRetain = now
      await store.retain(retention, 10_000)
    }
    for (const m of await store.expire(now, 1000))
      if (m.kind !== 'receipt' && m.flags & Flag.RECEIPT) {
        const u = await store.userById(m.to)
        this.receipts.tell(m.from, ReceiptStatus.EXPIRED, m, { id: m.to, name: u?.name ?? '' }, m.seq, now)
      }
    for (const m of await store.releaseDue(now, 1000))
      if (!this.committed(m) && m.kind !== 'receipt' && m.flags & Flag.RECEIPT) {
        const name = (await this.directory.resolveUser({ kind: 'user', id: m.to }))?.name ?? ''
        this.receipts.tell(m.from, ReceiptStatus.STORED, m, { id: m.to, name }, m.seq, now)
      }
    if (now - this.lastPrune > PRUNE_EVERY_MS) {
      this.lastPrune = now
      await store.pruneDedupe(now - dedupeRetentionMs)
    }
  }
}
