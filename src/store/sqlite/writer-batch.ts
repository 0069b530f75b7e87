/**
 * One batch of the group commit as the writer thread receives it: flat arrays of column values (cheap to copy
 * between threads) and a single buffer with every body, transferred rather than copied. A body of a decoded
 * frame is a view into a larger read buffer, which a structured clone would copy whole: packing copies only
 * its bytes, once. `packBatch` runs on the main thread, `applyBatch` in the writer (writer.ts).
 */
import type { BetterSqlite3 } from './driver.js'
import { kindNumber } from '../rows.js'
import { encodeAbove } from '../acks.js'
import type { CommitPlan, QueueCounters } from '../plan.js'
import type { NewCopy, StoredMessage } from '../store.js'

type Cell = number | string | null

export interface WriterBatch {
  /** sender, msgId, at per fresh dedupe key some send claimed. */
  dedupe: number[]
  /** sender, msgId per key to release. */
  undedupe: number[]
  /** LOG_COLUMNS cells per row; its body is the next of `lengths`. */
  log: Cell[]
  /** HELD_COLUMNS cells per row; its body follows the log's. */
  held: Cell[]
  /** Body lengths in `bodies`, log rows first, then held rows. */
  lengths: number[]
  bodies: ArrayBuffer
  /** user, seq per row read. */
  reads: number[]
  /** at, user, device per last-seen. */
  seen: number[]
  /** floor, above (text), device per moved cursor. */
  cursors: Cell[]
  /** next, count, bytes, handled floor, handled above (text), user per changed counter row. */
  counters: Cell[]
}

export type WriterReply = { ok: true } | { ok: false; message: string; code: string | undefined }

const LOG_COLUMNS = 14
const HELD_COLUMNS = 13

/** The batch for `plan`, with the fresh dedupe keys the plan was made with. */
export function packBatch(plan: CommitPlan, fresh: readonly { sender: number; msgId: number; at: number }[]): WriterBatch {
  const dedupe: number[] = []
  for (const k of fresh) dedupe.push(k.sender, k.msgId, k.at)
  const undedupe: number[] = []
  for (const k of plan.released) undedupe.push(k.sender, k.msgId)
  const log: Cell[] = []
  const held: Cell[] = []
  const lengths: number[] = []
  let total = 0
  for (const m of plan.queued) {
    pushLog(log, m)
    lengths.push(m.body.length)
    total += m.body.length
  }
  for (const c of plan.held) {
    pushHeld(held, c)
    lengths.push(c.body.length)
    total += c.body.length
  }
  const bodies = new Uint8Array(total)
  let at = 0
  for (const m of plan.queued) {
    bodies.set(m.body, at)
    at += m.body.length
  }
  for (const c of plan.held) {
    bodies.set(c.body, at)
    at += c.body.length
  }
  const reads: number[] = []
  for (const r of plan.reads) reads.push(r.user, r.seq)
  const seen: number[] = []
  for (const x of plan.seen) seen.push(x.at, x.user, x.device)
  const cursors: Cell[] = []
  for (const [id, acks] of plan.devices) cursors.push(acks.floor, encodeAbove(acks.above), id)
  const counters: Cell[] = []
  for (const [user, c] of plan.counters) pushCounters(counters, user, c)
  return { dedupe, undedupe, log, held, lengths, bodies: bodies.buffer, reads, seen, cursors, counters }
}

function pushLog(out: Cell[], m: StoredMessage): void {
  out.push(
    m.to,
    m.seq,
    m.from,
    m.fromName,
    m.msgId,
    kindNumber(m.kind),
    m.ts,
    m.flags,
    m.topic ?? null,
    m.expiresAt ?? null,
    m.notBefore ?? null,
    m.fileId ?? null,
    m.peer ?? null,
    m.device ?? null,
  )
}

function pushHeld(out: Cell[], c: NewCopy): void {
  out.push(
    c.to,
    c.notBefore!,
    c.from,
    c.fromName,
    c.msgId,
    kindNumber(c.kind),
    c.ts,
    c.flags,
    c.topic ?? null,
    c.expiresAt ?? null,
    c.fileId ?? null,
    c.peer ?? null,
    c.device ?? null,
  )
}

function pushCounters(out: Cell[], user: number, c: QueueCounters): void {
  out.push(c.next, c.count, c.bytes, c.handled.floor, encodeAbove(c.handled.above), user)
}

/** A function that writes one batch in one transaction on `db` (the writer's connection). */
export function applyBatch(db: BetterSqlite3.Database): (b: WriterBatch) => void {
  const s = {
    dedupe: db.prepare(`INSERT OR IGNORE INTO dedupe (sender, msg_id, at) VALUES (?, ?, ?)`),
    undedupe: db.prepare(`DELETE FROM dedupe WHERE sender = ? AND msg_id = ?`),
    insertMsg: db.prepare(
      `INSERT INTO log (user, seq, sender, sender_name, msg_id, kind, ts, flags, topic, expires_at, not_before, file_id, peer, device, body)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    insertHeld: db.prepare(
      `INSERT INTO held (user, not_before, sender, sender_name, msg_id, kind, ts, flags, topic, expires_at, file_id, peer, device, body)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    markRead: db.prepare(`UPDATE log SET read = 1 WHERE user = ? AND seq = ?`),
    setLastSeen: db.prepare(`UPDATE users SET last_seen = ? WHERE id = ?`),
    setDeviceSeen: db.prepare(`UPDATE devices SET last_seen = ? WHERE id = ? AND user = ?`),
    setCursor: db.prepare(`UPDATE devices SET ack_floor = ?, ack_above = ? WHERE id = ?`),
    setCounters: db.prepare(
      `UPDATE users SET next_seq = ?, queue_count = ?, queue_bytes = ?, handled_floor = ?, handled_above = ? WHERE id = ?`,
    ),
  }
  return db.transaction((b: WriterBatch): void => {
    const d = b.dedupe
    for (let i = 0; i < d.length; i += 3) s.dedupe.run(d[i], d[i + 1], d[i + 2])
    const u = b.undedupe
    for (let i = 0; i < u.length; i += 2) s.undedupe.run(u[i], u[i + 1])
    const bodies = Buffer.from(b.bodies)
    let at = 0
    let n = 0
    const row: Cell[] = []
    const body = (): Buffer => {
      const len = b.lengths[n++]!
      const out = bodies.subarray(at, at + len)
      at += len
      return out
    }
    for (let i = 0; i < b.log.length; i += LOG_COLUMNS) {
      row.length = 0
      for (let j = 0; j < LOG_COLUMNS; j++) row.push(b.log[i + j]!)
      s.insertMsg.run(...row, body())
    }
    for (let i = 0; i < b.held.length; i += HELD_COLUMNS) {
      row.length = 0
      for (let j = 0; j < HELD_COLUMNS; j++) row.push(b.held[i + j]!)
      s.insertHeld.run(...row, body())
    }
    const r = b.reads
    for (let i = 0; i < r.length; i += 2) s.markRead.run(r[i], r[i + 1])
    const x = b.seen
    for (let i = 0; i < x.length; i += 3) {
      s.setLastSeen.run(x[i], x[i + 1])
      s.setDeviceSeen.run(x[i], x[i + 2], x[i + 1])
    }
    const c = b.cursors
    for (let i = 0; i < c.length; i += 3) s.setCursor.run(c[i], c[i + 1], c[i + 2])
    const k = b.counters
    for (let i = 0; i < k.length; i += 6) s.setCounters.run(k[i], k[i + 1], k[i + 2], k[i + 3], k[i + 4], k[i + 5])
  })
}

/**
 * Where a batch is written: the writer thread for a file, or inline on the caller's connection. Batches are
 * written in the order given; after a failed one, every batch given before `reset()` fails too.
 */
export interface BatchWriter {
  write(b: WriterBatch): Promise<void>
  /** What was planned over a failed batch has been dropped: batches given from now on are written again. */
  reset(): void
  close(): Promise<void>
}

/** Writes on `db` itself, synchronously (an in-memory database, which a second connection cannot share). */
export function inlineWriter(db: BetterSqlite3.Database): BatchWriter {
  const apply = applyBatch(db)
  return {
    write: (b) => {
      try {
        apply(b)
        return Promise.resolve()
      } catch (err) {
        return Promise.reject(err as Error)
      }
    },
    reset: () => {},
    close: () => Promise.resolve(),
  }
}
