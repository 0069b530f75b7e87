/**
 * Row ⇄ record mapping shared by the SQL stores (SQLite and PostgreSQL use the same column names for
 * messages and users; only the recipient column differs: `user` in SQLite, `user_id` in PostgreSQL).
 */
import { MessageKinds, type MessageKind } from '../core/types.js'
import type { StoredMessage, UserRecord } from './store.js'

/** The columns of a queued (or held) message, but its recipient. */
export interface MessageColumns {
  seq: number
  sender: number
  sender_name: string
  msg_id: number
  kind: number
  ts: number
  flags: number
  topic: string | null
  expires_at: number | null
  not_before: number | null
  file_id: string | null
  body: Buffer
}

export interface UserColumns {
  id: number
  name: string
  token_hash: string | null
  created_at: number
}

export function kindNumber(kind: MessageKind): number {
  return MessageKinds.indexOf(kind)
}

export function messageFromRow(r: MessageColumns, to: number): StoredMessage {
  const m: StoredMessage = {
    seq: r.seq,
    to,
    from: r.sender,
    fromName: r.sender_name,
    msgId: r.msg_id,
    kind: MessageKinds[r.kind] ?? 'text',
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
