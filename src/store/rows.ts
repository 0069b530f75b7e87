/**
 * Row ⇄ record mapping shared by the SQL stores (SQLite and PostgreSQL use the same column names for
 * messages, users and devices; only the owner column differs: `user` in SQLite, `user_id` in PostgreSQL).
 */
import { kindCode, kindOf, type MessageColumns, type MessageKind } from '../schema/message.js'
import { decodeAbove } from './acks.js'
import type { DeviceRecord, StoredMessage, UserRecord } from './store.js'
import { nameSkeleton } from '../core/names.js'
import type { Logger } from '../core/types.js'

/** The columns of a queued (or held) message, but its recipient: typed from the message schema. */
export type { MessageColumns }

export interface UserColumns {
  id: number
  name: string
  /** 0/1 in SQLite, a boolean in PostgreSQL. */
  tokenless: number | boolean
  password_hash: string | null
  created_at: number
}

/** A device's columns, but its user (each store's own key column, as for messages). */
export interface DeviceColumns {
  id: number
  label: string
  token_hash: string | null
  created_at: number
  last_seen: number | null
  /** The cursor (acks.ts): every seq up to ack_floor, and the ranges in ack_above ("5-7,9"). */
  ack_floor: number
  ack_above: string | null
}

/** The stored kind is the kind's explicit code in the schema, never a position in a list. */
export function kindNumber(kind: MessageKind): number {
  return kindCode(kind)
}

/**
 * Spelled out for speed (this runs for every message read from a queue): the column and record types come from
 * the schema, so a required field missing here does not compile, and test/unit/message-schema.test.ts checks
 * that every column of the schema arrives in the record.
 */
export function messageFromRow(r: MessageColumns, to: number): StoredMessage {
  const m: StoredMessage = {
    seq: r.seq,
    to,
    from: r.sender,
    fromName: r.sender_name,
    msgId: r.msg_id,
    kind: kindOf(r.kind) ?? 'text',
    ts: r.ts,
    flags: r.flags,
    body: r.body,
  }
  if (r.topic !== null) m.topic = r.topic
  if (r.expires_at !== null) m.expiresAt = r.expires_at
  if (r.not_before !== null) m.notBefore = r.not_before
  if (r.file_id !== null) m.fileId = r.file_id
  if (r.peer !== null) m.peer = r.peer
  if (r.device !== null) m.device = r.device
  return m
}

export function userFromRow(r: UserColumns): UserRecord {
  return {
    id: r.id,
    name: r.name,
    tokenless: r.tokenless === true || r.tokenless === 1,
    passwordHash: r.password_hash,
    createdAt: r.created_at,
  }
}

export function deviceFromRow(r: DeviceColumns, user: number): DeviceRecord {
  return {
    id: r.id,
    user,
    label: r.label,
    tokenHash: r.token_hash,
    createdAt: r.created_at,
    lastSeen: r.last_seen ?? undefined,
    acks: { floor: r.ack_floor, above: decodeAbove(r.ack_above) },
  }
}

/**
 * Fill the skeleton column for existing users, oldest first (after `clear` has emptied it). Where two existing
 * names look alike, the older keeps the skeleton and the later gets none: both go on working, and new look-alikes
 * of either are still refused through the older. Returns those later ones.
 */
export function fillSkeletons(
  rows: { id: number; name: string }[],
  set: (id: number, skeleton: string) => void,
  clear: () => void,
): { id: number; name: string; like: string }[] {
  clear()
  const seen = new Map<string, string>()
  const clash: { id: number; name: string; like: string }[] = []
  for (const r of rows) {
    const skeleton = nameSkeleton(r.name)
    const like = seen.get(skeleton)
    if (like !== undefined) {
      clash.push({ id: r.id, name: r.name, like })
      continue
    }
    seen.set(skeleton, r.name)
    set(r.id, skeleton)
  }
  return clash
}

/** Existing look-alike names found by fillSkeletons keep working; an operator may rename one. */
export function logSkeletonClash(log: Logger | undefined, clash: { id: number; name: string; like: string }[]): void {
  for (const c of clash) log?.warn({ user: c.id, name: c.name, like: c.like }, 'an existing name looks like an older one')
}
