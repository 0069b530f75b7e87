/**
 * Row ⇄ record mapping shared by the SQL stores (SQLite and PostgreSQL use the same column names for
 * messages and users; only the recipient column differs: `user` in SQLite, `user_id` in PostgreSQL).
 */
import { FIELD_LIST, kindCode, kindOf, type MessageColumns, type MessageKind } from '../schema/message.js'
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

/** [record field, column, optional] for every stored column of the schema but `kind` (mapped by code). */
const COLUMNS = FIELD_LIST.flatMap(([field, spec]) =>
  spec.column === null || spec.type === 'kind' ? [] : [[field, spec.column, spec.optional === true] as const],
)

export function messageFromRow(r: MessageColumns, to: number): StoredMessage {
  const row = r as unknown as Record<string, unknown>
  const m = { to, kind: kindOf(r.kind) ?? 'text' } as Record<string, unknown>
  for (const [field, column, optional] of COLUMNS) {
    const v = row[column]
    if (!optional || (v !== null && v !== undefined)) m[field] = v
  }
  return m as unknown as StoredMessage
}

export function userFromRow(r: UserColumns): UserRecord {
  return { id: r.id, name: r.name, tokenHash: r.token_hash, createdAt: r.created_at }
}
