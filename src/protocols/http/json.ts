/**
 * The JSON forms of the core's values, shared by the REST responses, the events long-poll and the SSE
 * stream, so that a client parses one shape whichever way it receives. Pure functions, no I/O.
 */
import { decodeReceiptBody } from '../../core/receipt-body.js'
import { ALL_ID, SERVER_ID, type Address, type Message, type Outbound, type Receipt } from '../../core/types.js'
import type { MessageJsonFields } from '../../schema/message.js'

/** A message as JSON: the schema's JSON fields (src/schema/message.ts), the kind by name, then the body. */
export type MessageJson = MessageJsonFields & {
  /** The body as UTF-8 text; absent when the body is not valid UTF-8 (then `base64` carries it). */
  text?: string
  base64?: string
  /** For kind 'receipt' (a receipt queued while the sender was away): the receipt it carries. */
  receipt?: ReceiptJson
}

export interface ReceiptJson {
  msgId: number
  status: number
  statusText: string
  recipient: number
  recipientName: string
  seq: number
  at: number
  topic?: string
  /** Non-zero: this receipt waited in your queue and must be acknowledged with POST /v1/ack like a message. */
  ackSeq?: number
}

export type EventType = 'message' | 'receipt' | 'notice' | 'presence' | 'rename' | 'conversation' | 'read' | 'closed'

const STATUS_TEXT: Record<number, string> = {
  200: 'delivered',
  210: 'read',
  202: 'stored',
  300: 'not-yet',
  404: 'deleted',
  410: 'expired',
  507: 'dropped',
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** A body as `{text}` when it is valid UTF-8, else `{base64}`. */
export function bodyJson(body: Buffer): { text: string } | { base64: string } {
  try {
    return { text: utf8.decode(body) }
  } catch {
    return { base64: body.toString('base64') }
  }
}

export function receiptJson(r: Receipt, ackSeq = 0): ReceiptJson {
  const out: ReceiptJson = {
    msgId: r.msgId,
    status: r.status,
    statusText: STATUS_TEXT[r.status] ?? String(r.status),
    recipient: r.recipient,
    recipientName: r.recipientName,
    seq: r.seq,
    at: r.at,
  }
  if (r.topic !== undefined) out.topic = r.topic
  if (ackSeq !== 0) out.ackSeq = ackSeq
  return out
}

/**
 * Spelled out for speed: MessageJson comes from the schema, so a required field missing here does not compile,
 * and test/unit/message-schema.test.ts checks that every JSON field of the schema arrives.
 */
export function messageJson(m: Message): MessageJson {
  const out: MessageJson = {
    seq: m.seq,
    msgId: m.msgId,
    from: m.from,
    fromName: m.fromName,
    to: m.to,
    kind: m.kind,
    ts: m.ts,
    flags: m.flags,
  }
  if (m.topic !== undefined && m.topic !== null) out.topic = m.topic
  if (m.expiresAt) out.expiresAt = m.expiresAt
  if (m.notBefore) out.notBefore = m.notBefore
  if (m.fileId) out.fileId = m.fileId
  if (m.peer) out.peer = m.peer
  Object.assign(out, bodyJson(m.body))
  if (m.kind === 'receipt') {
    const r = decodeReceiptBody(m.body)
    if (r !== undefined) out.receipt = receiptJson(r, m.seq)
  }
  return out
}

/** One Outbound event as the (type, data) pair the events endpoint and the SSE stream both carry. */
export function eventJson(ev: Outbound): { type: EventType; data: Record<string, unknown> } {
  switch (ev.type) {
    case 'message':
      return { type: 'message', data: messageJson(ev.msg) as unknown as Record<string, unknown> }
    case 'receipt':
      return { type: 'receipt', data: receiptJson(ev.receipt, ev.seq) as unknown as Record<string, unknown> }
    case 'notice':
      return {
        type: 'notice',
        data: ev.data === undefined ? { code: ev.code, text: ev.text } : { code: ev.code, text: ev.text, data: ev.data },
      }
    case 'presence': {
      const data: Record<string, unknown> = { id: ev.user.id, name: ev.user.name, online: ev.online, at: ev.at }
      if (ev.protocol !== undefined) data.protocol = ev.protocol
      return { type: 'presence', data }
    }
    case 'rename':
      return { type: 'rename', data: { id: ev.user.id, name: ev.user.name, oldName: ev.oldName } }
    case 'conversation': {
      const c = ev.ev
      const data: Record<string, unknown> = { event: c.event, convId: c.convId, peer: { id: c.peer.id, name: c.peer.name } }
      if (c.event === 'request') data.expiresAt = c.expiresAt
      if (c.event === 'closed') data.reason = c.reason
      if (c.event === 'message') Object.assign(data, bodyJson(c.body))
      return { type: 'conversation', data }
    }
    case 'read':
      return { type: 'read', data: { seq: ev.seq, at: ev.at } }
  }
}

/**
 * A recipient as JSON: an integer is a user id; a string is "ALL", "SERVER", "#topic" (names cannot start
 * with '#', so this cannot be mistaken for a name), or a user name.
 */
export function parseAddress(to: number | string): Address {
  if (typeof to === 'number') {
    if (to === ALL_ID) return { kind: 'all' }
    if (to === SERVER_ID) return { kind: 'server' }
    return { kind: 'user', id: to }
  }
  const upper = to.toUpperCase()
  if (upper === 'ALL') return { kind: 'all' }
  if (upper === 'SERVER') return { kind: 'server' }
  if (to.startsWith('#')) return { kind: 'topic', topic: to.slice(1) }
  return { kind: 'name', name: to }
}

/** A user named by id or name (block, unblock, conversations). */
export function parseUser(who: number | string): Address {
  return typeof who === 'number' ? { kind: 'user', id: who } : { kind: 'name', name: who }
}
