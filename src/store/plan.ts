/**
 * The batch planner: what one commit(ops) does to the logs and cursors, decided in memory from the batch and
 * the state it reads, with no I/O. Every backend applies the same rules because they live here once:
 *
 * - seqs: per user, from its `next` counter, gap-free; a refused or held copy takes none;
 * - queue limits: a copy that would take what no device of its user has acknowledged over `maxCount` messages
 *   or `maxBytes` body bytes is refused (seq 0) with the limit it broke; an ack earlier in the batch frees room
 *   for a later send; a sent copy (Flag SENT) is never refused and counts as handled from the start;
 * - acks: a device's cursor (an AckSet) takes the seq; the first device to acknowledge a message frees its room
 *   and is told so (`first`), so its sender hears 200 once; the row stays in the log;
 * - reads: the first read of a message is told so (210 once), and the row is marked;
 * - held copies: `notBefore` after `ts` answers -1 and is kept apart until releaseDue (planRelease);
 * - dedupe: the first send of a key in the batch claims it, later ones are duplicates; a send that stored
 *   nothing (every copy refused) gives its key back, so the sender's retry is not called a duplicate.
 *
 * A backend then only does I/O (see memory/, sqlite/ and postgres/): read the counters of `usersOf(ops)` and the
 * cursors of `devicesOf(ops)`, record the `dedupeKeys(ops)` it can (those it recorded are `fresh`), read the rows
 * the acks and reads name (`rows`, by op), call planCommit, and write `queued`, `held`, `released` keys, `reads`,
 * `counters` and `devices`.
 */
import { addAck, copyAcks, hasAck, sameAcks, type AckSet } from './acks.js'
import type { NewCopy, QueueRefusal, StoredMessage, StoreOp, StoreResult } from './store.js'

/** Flag.SENT (core/types.ts): a sent copy. The store knows the bit, not the core's table. */
const SENT = 8

/**
 * A user's counters: the next seq to hand out; what no device has acknowledged (count and body bytes); and the
 * seqs that are handled — acknowledged by some device, sent copies, expired — as an AckSet.
 */
export interface QueueCounters {
  next: number
  count: number
  bytes: number
  handled: AckSet
}

export function isSentCopy(m: { flags: number }): boolean {
  return (m.flags & SENT) !== 0
}

export interface DedupeKey {
  sender: number
  msgId: number
  /** When it was recorded (the message's ts), for pruneDedupe. */
  at: number
}

type SendOp = Extract<StoreOp, { type: 'send' }>
type AckOp = Extract<StoreOp, { type: 'ack' }>
type ReadOp = Extract<StoreOp, { type: 'read' }>

function keyOf(sender: number, msgId: number): string {
  return `${sender}:${msgId}`
}

/** Every user whose counters the batch may read or change, ascending (the order in which to lock them). */
export function usersOf(ops: readonly StoreOp[]): number[] {
  const users = new Set<number>()
  for (const op of ops)
    if (op.type === 'send') for (const c of op.copies) users.add(c.to)
    else if (op.type !== 'seen') users.add(op.user)
  return [...users].sort((a, b) => a - b)
}

/**
 * Every device whose cursor the batch may change, ascending: those acks name, and the devices sent copies came
 * from (a device has what it sent: its cursor takes the copy's seq at once, so that it leaves no hole).
 */
export function devicesOf(ops: readonly StoreOp[]): number[] {
  const devices = new Set<number>()
  for (const op of ops)
    if (op.type === 'ack') devices.add(op.device)
    else if (op.type === 'send') for (const c of op.copies) if (c.device !== undefined && isSentCopy(c)) devices.add(c.device)
  return [...devices].sort((a, b) => a - b)
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
  /** The cursor of every device in devicesOf(ops) of the op's user; a device missing here does not exist. */
  devices: ReadonlyMap<number, AckSet>
  /**
   * rows[i], for an ack or read ops[i]: the message at (user, seq) as it was before the batch; undefined when there
   * was none (never stored, removed by retention or expiry, or inserted by this batch).
   */
  rows: readonly (StoredMessage | undefined)[]
  /** wasRead[i], for a read ops[i]: was that row marked read before the batch? */
  wasRead: readonly boolean[]
}

export interface CommitPlan {
  /** results[i] answers ops[i]. */
  results: StoreResult[]
  /** Rows to insert into the logs, in op order. */
  queued: StoredMessage[]
  /** Copies to hold until their notBefore, in op order (ties are released in this order). */
  held: NewCopy[]
  /** Fresh dedupe keys to delete again: every send that claimed them stored nothing. */
  released: { sender: number; msgId: number }[]
  /** The new counters of every user whose counters changed. */
  counters: Map<number, QueueCounters>
  /** The new cursor of every device whose cursor changed. */
  devices: Map<number, AckSet>
  /** Rows to mark read, in op order. */
  reads: { user: number; seq: number }[]
  /** Last-seen times to write (the latest per device), in op order. */
  seen: { user: number; device: number; at: number }[]
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
  readonly queued: StoredMessage[]
  readonly held: NewCopy[]
  /** Working copies of the device cursors the batch touched. */
  readonly devices: Map<number, AckSet>
  readonly reads: { user: number; seq: number }[]
  /** `user:seq` of every row marked read by this batch. */
  readonly readKeys: Set<string>
}

function counterOf(st: PlanState, user: number): QueueCounters | undefined {
  let c = st.counters.get(user)
  if (c === undefined) {
    const before = st.input.counters.get(user)
    if (before === undefined) return undefined
    c = { next: before.next, count: before.count, bytes: before.bytes, handled: copyAcks(before.handled) }
    st.counters.set(user, c)
  }
  return c
}

function cursorOf(st: PlanState, device: number): AckSet | undefined {
  let a = st.devices.get(device)
  if (a === undefined) {
    const before = st.input.devices.get(device)
    if (before === undefined) return undefined
    a = copyAcks(before)
    st.devices.set(device, a)
  }
  return a
}

/** The row at (user, seq): as it was before the batch, or inserted by it. */
function rowOf(st: PlanState, before: StoredMessage | undefined, user: number, seq: number): StoredMessage | undefined {
  if (before !== undefined) return before
  for (let i = st.queued.length - 1; i >= 0; i--) {
    const m = st.queued[i]!
    if (m.to === user && m.seq === seq) return m
  }
  return undefined
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
    const sent = isSentCopy(cp)
    const why: QueueRefusal | undefined =
      c === undefined
        ? 'no-such-user'
        : sent
          ? undefined
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
    if (sent) {
      // Not what `stored` means: a send whose every real copy was refused gives its dedupe key back.
      const seq = c!.next++
      addAck(c!.handled, seq)
      const from = cp.device === undefined ? undefined : cursorOf(st, cp.device)
      if (from !== undefined) addAck(from, seq)
      st.queued.push({ ...cp, seq })
      seqs.push(seq)
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
  const c = counterOf(st, op.user)
  const cursor = cursorOf(st, op.device)
  if (c === undefined || cursor === undefined || op.seq < 1 || op.seq >= c.next) return { type: 'ack', first: null, fresh: false }
  const fresh = addAck(cursor, op.seq)
  // A device that had it already (a new device's cursor starts past what it never received) is never first.
  if (!fresh || hasAck(c.handled, op.seq)) return { type: 'ack', first: null, fresh }
  const m = rowOf(st, before, op.user, op.seq)
  addAck(c.handled, op.seq)
  if (m === undefined) return { type: 'ack', first: null, fresh }
  c.count -= 1
  c.bytes -= m.body.length
  return { type: 'ack', first: m, fresh }
}

function planRead(st: PlanState, op: ReadOp, before: StoredMessage | undefined, wasRead: boolean): StoreResult {
  const key = `${op.user}:${op.seq}`
  const m = rowOf(st, before, op.user, op.seq)
  if (m === undefined || wasRead || st.readKeys.has(key)) return { type: 'read', first: null }
  st.readKeys.add(key)
  st.reads.push({ user: op.user, seq: op.seq })
  return { type: 'read', first: m }
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
    devices: new Map(),
    reads: [],
    readKeys: new Set(),
  }
  const results: StoreResult[] = new Array<StoreResult>(input.ops.length)
  const seen: { user: number; device: number; at: number }[] = []
  for (let i = 0; i < input.ops.length; i++) {
    const op = input.ops[i]!
    if (op.type === 'seen') {
      seen.push({ user: op.user, device: op.device, at: op.at })
      results[i] = { type: 'seen' }
      continue
    }
    results[i] =
      op.type === 'send'
        ? planSend(st, op)
        : op.type === 'ack'
          ? planAck(st, op, input.rows[i])
          : planRead(st, op, input.rows[i], input.wasRead[i] ?? false)
  }
  const released: { sender: number; msgId: number }[] = []
  for (const k of st.freshKeys)
    if (!st.claimed.has(k)) {
      const [sender, msgId] = k.split(':').map(Number) as [number, number]
      released.push({ sender, msgId })
    }
  for (const [user, c] of st.counters) {
    const before = input.counters.get(user)!
    if (c.next === before.next && c.count === before.count && c.bytes === before.bytes && sameAcks(c.handled, before.handled))
      st.counters.delete(user)
  }
  for (const [device, a] of st.devices) if (sameAcks(a, st.input.devices.get(device)!)) st.devices.delete(device)
  return {
    results,
    queued: st.queued,
    held: st.held,
    released,
    counters: st.counters,
    devices: st.devices,
    reads: st.reads,
    seen,
  }
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
      counters.set(m.to, (c = { next: before.next, count: before.count, bytes: before.bytes, handled: copyAcks(before.handled) }))
    }
    queued.push({ ...m, seq: c.next++ })
    c.count += 1
    c.bytes += m.body.length
  }
  return { queued, counters }
}

/**
 * Expired messages (expiresAt <= now) leave the log: each that no device had acknowledged is handled from now on
 * (no longer counted against the limits) and returned, so its sender can be told 410; one that some device had
 * acknowledged just goes.
 */
export function planExpire(
  rows: readonly StoredMessage[],
  countersBefore: ReadonlyMap<number, QueueCounters>,
): { expired: StoredMessage[]; counters: Map<number, QueueCounters> } {
  const counters = new Map<number, QueueCounters>()
  const expired: StoredMessage[] = []
  for (const m of rows) {
    let c = counters.get(m.to)
    if (c === undefined) {
      const before = countersBefore.get(m.to)
      if (before === undefined) continue
      counters.set(m.to, (c = { next: before.next, count: before.count, bytes: before.bytes, handled: copyAcks(before.handled) }))
    }
    if (!addAck(c.handled, m.seq)) continue
    c.count -= 1
    c.bytes -= m.body.length
    expired.push(m)
  }
  return { expired, counters }
}
