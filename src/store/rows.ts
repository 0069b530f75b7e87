/**
 * Row ⇄ record mapping shared by the SQL stores (SQLite and PostgreSQL use the same column names for
 * messages and users; only the recipient column differs: `user` in SQLite, `user_id` in PostgreSQL).
 */
import { kindCode, kindOf, type MessageColumns, type MessageKind } from '../schema/message.js'
import type { StoredMessage, UserRecord } from './store.js'

/** The columns of a queued (or held) message, but its recipient: typed from the message schema. */
export type { MessageColumns }

export interface UserColumns {
  id: number
  name: string
  token_hash: string | null
  created_at: number
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
  return m
}

export function userFromRow(r: UserColumns): UserRecord {
  return { id: r.id, name: r.name, tokenHash: r.token_hash, createdAt: r.created_at }
}
