/**
 * The batch planner: what one commit(ops) does to the queues, decided in memory from the batch and the
 * counters it reads, with no I/O. Every backend applies the same rules because they live here once:
 *
 * - seqs: per recipient, from its `next` counter, gap-free; a refused or held copy takes none;
 * - queue limits: a copy that would take its queue over `maxCount` messages or `maxBytes` body bytes is
 *   refused (seq 0) with the limit it broke; an ack earlier in the batch frees room for a later send;
 * - held copies: `notBefore` after `ts` answers -1 and is kept apart until releaseDue (planRelease);
 * - dedupe: the first send of a key in the batch claims it, later ones are duplicates; a send that stored
 *   nothing (every copy refused) gives its key back, so the sender's retry is not called a duplicate.
 *
 * A backend then only does I/O (see memory/, sqlite/ and postgres/): read the counters of `usersOf(ops)`, record
 * the `dedupeKeys(ops)` it can (those it recorded are `fresh`), delete the rows the acks name (`removed`, by op),
 * call planCommit, and write `queued`, `held`, `released` keys and `counters`.
 */
import type { NewCopy, QueueRefusal, StoredMessage, StoreOp, StoreResult } from './store.js'

/** A recipient's counters: the next seq to hand out, and its queue's length and body bytes. */
export interface QueueCounters {
  next: number
  count: number
  bytes: number
}

export interface DedupeKey {
  sender: number
  msgId: number
  /** When it was recorded (the message's ts), for pruneDedupe. */
  at: number
}

type SendOp = Extract<StoreOp, { type: 'send' }>
type AckOp = Extract<StoreOp, { type: 'ack' }>

function keyOf(sender: number, msgId: number): string {
  return `${sender}:${msgId}`
}

/** Every user whose counters the batch may read or change, ascending (the order in which to lock them). */
export function usersOf(ops: readonly StoreOp[]): number[] {
  const users = new Set<number>()
  for (const op of ops)
    if (op.type === 'send') for (const c of op.copies) users.add(c.to)
    else users.add(op.user)
  return [...users].sort((a, b) => a - b)
}

/** The distinct dedupe keys of a batch, sorted, so batches recording overlapping keys take them in one order. */
export function dedupeKeys(ops: readonly StoreOp[], now: () => number = Date.now): DedupeKey[] {
  const seen = new Map<string, DedupeKey>()
  for (const op of ops) {
    if (op.type !== 'send' || op.dedupe === undefined) continue
    const k = keyOf(op.dedupe.sender, op.dedupe.msgId)
    if (!seen.has(k)) seen.set(k, { sender: op.dedupe.sender, msgId: op.dedupe.msgId, at: op.copies[0]?.ts ?? now() })
  }
  return [...seen.values()].sort((a, b) => a.sender - b.sender || a.msgId - b.msgId)
}

export interface CommitInput {
  ops: readonly StoreOp[]
  /** The counters of every user in usersOf(ops) as they were before the batch; a user missing here does not exist. */
  counters: ReadonlyMap<number, QueueCounters>
  /** Did the backend record this dedupe key for this batch (it was not known before)? */
  fresh: (sender: number, msgId: number) => boolean
  /**
   * removed[i], for an ack ops[i]: the row it deleted that existed before the batch; undefined when there was none
   * (never queued, already gone, taken by an earlier ack of the batch, or inserted by this batch).
   */
  removed: readonly (StoredMessage | undefined)[]
}

export interface CommitPlan {
  /** results[i] answers ops[i]. */
  results: StoreResult[]
  /** Rows to insert into the queues, in op order (rows acknowledged later in the same batch are left out). */
  queued: StoredMessage[]
  /** Copies to hold until their notBefore, in op order (ties are released in this order). */
  held: NewCopy[]
  /** Fresh dedupe keys to delete again: every send that claimed them stored nothing. */
  released: { sender: number; msgId: number }[]
  /** The new counters of every user whose counters changed. */
  counters: Map<number, QueueCounters>
}

/** What planCommit keeps while it walks a batch. */
interface PlanState {
  readonly input: CommitInput
  /** Working copies of the counters the batch touched. */
  readonly counters: Map<number, QueueCounters>
  /** Dedupe keys held by a send of this batch (a later send with one is a duplicate). */
  readonly claimed: Set<string>
  /** Every fresh key some send claimed (those not in `claimed` at the end are released). */
  readonly freshKeys: Set<string>
  /** Rows to insert; null where an ack later in the batch removed it. */
  readonly queued: (StoredMessage | null)[]
  readonly held: NewCopy[]
}

function counterOf(st: PlanState, user: number): QueueCounters | undefined {
  let c = st.counters.get(user)
  if (c === undefined) {
    const before = st.input.counters.get(user)
    if (before === undefined) return undefined
    c = { next: before.next, count: before.count, bytes: before.bytes }
    st.counters.set(user, c)
  }
  return c
}

function planSend(st: PlanState, op: SendOp): StoreResult {
  let key: string | undefined
  if (op.dedupe !== undefined) {
    key = keyOf(op.dedupe.sender, op.dedupe.msgId)
    if (st.claimed.has(key) || !st.input.fresh(op.dedupe.sender, op.dedupe.msgId)) return { type: 'send', duplicate: true }
    st.claimed.add(key)
    st.freshKeys.add(key)
  }
  const seqs: number[] = []
  let refused: (QueueRefusal | null)[] | undefined
  let stored = false
  for (let i = 0; i < op.copies.length; i++) {
    const cp = op.copies[i]!
    const c = counterOf(st, cp.to)
    const why: QueueRefusal | undefined =
      c === undefined
        ? 'no-such-user'
        : c.count + 1 > op.limits.maxCount
          ? 'queue-length'
          : c.bytes + cp.body.length > op.limits.maxBytes
            ? 'queue-bytes'
            : undefined
    if (why !== undefined) {
      refused ??= new Array<QueueRefusal | null>(op.copies.length).fill(null)
      refused[i] = why
      seqs.push(0)
      continue
    }
    stored = true
    if (cp.notBefore !== undefined && cp.notBefore > cp.ts) {
      st.held.push(cp)
      seqs.push(-1)
      continue
    }
    const seq = c!.next++
    c!.count += 1
    c!.bytes += cp.body.length
    st.queued.push({ ...cp, seq })
    seqs.push(seq)
  }
  // Nothing stored: the sender is refused and will retry, and that retry must not be a "duplicate" of a message
  // that was never kept.
  if (key !== undefined && !stored) st.claimed.delete(key)
  return refused === undefined ? { type: 'send', duplicate: false, seqs } : { type: 'send', duplicate: false, seqs, refused }
}

function planAck(st: PlanState, op: AckOp, before: StoredMessage | undefined): StoreResult {
  let gone: StoredMessage | null = before ?? null
  if (gone === null)
    // A row this batch inserted earlier (rare: a message is pushed only once committed): it is never written.
    for (let i = st.queued.length - 1; i >= 0; i--) {
      const m = st.queued[i]
      if (m != null && m.to === op.user && m.seq === op.seq) {
        gone = m
        st.queued[i] = null
        break
      }
    }
  const c = counterOf(st, op.user)
  if (gone !== null && c !== undefined) {
    c.count -= 1
    c.bytes -= gone.body.length
  }
  return { type: 'ack', removed: gone }
}

/** Plan one batch. Pure: the inputs are not changed. */
export function planCommit(input: CommitInput): CommitPlan {
  const st: PlanState = {
    input,
    counters: new Map(),
    claimed: new Set(),
    freshKeys: new Set(),
    queued: [],
    held: [],
  }
  const results: StoreResult[] = new Array<StoreResult>(input.ops.length)
  for (let i = 0; i < input.ops.length; i++) {
    const op = input.ops[i]!
    results[i] = op.type === 'send' ? planSend(st, op) : planAck(st, op, input.removed[i])
  }
  const released: { sender: number; msgId: number }[] = []
  for (const k of st.freshKeys)
    if (!st.claimed.has(k)) {
      const [sender, msgId] = k.split(':').map(Number) as [number, number]
      released.push({ sender, msgId })
    }
  for (const [user, c] of st.counters) {
    const before = input.counters.get(user)!
    if (c.next === before.next && c.count === before.count && c.bytes === before.bytes) st.counters.delete(user)
  }
  const queued = st.queued.includes(null)
    ? st.queued.filter((m): m is StoredMessage => m !== null)
    : (st.queued as StoredMessage[])
  return { results, queued, held: st.held, released, counters: st.counters }
}

/**
 * Held copies that are due, moved into their queues: each takes its recipient's next seq, in the order given
 * (notBefore, then commit order). A copy whose recipient is gone (missing from `counters`) is dropped.
 */
export function planRelease(
  due: readonly NewCopy[],
  countersBefore: ReadonlyMap<number, QueueCounters>,
): { queued: StoredMessage[]; counters: Map<number, QueueCounters> } {
  const counters = new Map<number, QueueCounters>()
  const queued: StoredMessage[] = []
  for (const m of due) {
    let c = counters.get(m.to)
    if (c === undefined) {
      const before = countersBefore.get(m.to)
      if (before === undefined) continue
      counters.set(m.to, (c = { next: before.next, count: before.count, bytes: before.bytes }))
    }
    queued.push({ ...m, seq: c.next++ })
    c.count += 1
    c.bytes += m.body.length
  }
  return { queued, counters }
}
