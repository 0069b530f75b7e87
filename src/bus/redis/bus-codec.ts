/**
 * BusMessages as JSON text for Redis pub/sub. Pure: no I/O, no clock; decoding never throws.
 *
 * JSON has no bytes, and several fields are Buffers (Message.body of 'message' events, the body of a
 * conversation 'message' event, anything an adapter may add later): every Buffer/Uint8Array becomes
 * `{"$b64": "..."}` wherever it is, and comes back as a Buffer. A plain object that happens to use the marker
 * keys itself (a notice's free-form `data`) is wrapped in `{"$esc": {...}}`, so no user value is mistaken for a
 * Buffer. A Map or a function is dropped, and so is undefined.
 */
import type { BusMessage } from '../bus.js'

/**
 * 2: devices (kick names a device, revoke). A node of version 1 means other presence keys too (redis-bus.ts), so
 * the versions refuse each other's messages (counted and logged as malformed) rather than half-understand them.
 * 3: wakes go to the holder's own channel carrying their messages, in batches; the registry announces its changes
 * ('where', 'reaped'), which a node of version 2 would neither send nor hear.
 * 4: a receipt for a sender on another node travels live ('receipt'); a node of version 3 would refuse the whole
 * batch carrying one, wakes and all, and would store every such receipt where this version pushes it.
 */
export const BUS_CODEC_VERSION = 4

/** What travels on the cluster's channels: the broker's BusMessages, and the bus's own. */
export type WireMessage =
  | BusMessage
  /** The messages of one event-loop turn for one node. */
  | { type: 'batch'; msgs: BusMessage[] }
  /**
   * A device's registry entry changed: published by the Redis script that changed it, so every node hears the
   * changes in the order they were made. `online` false: the entry of `node` was removed.
   */
  | { type: 'where'; user: number; device: number; node: string; online: boolean }
  /** A dead node's entries were removed from the registry (by the script that reaped it). */
  | { type: 'reaped'; node: string }

export type DecodedBus = { ok: true; node: string; msg: WireMessage } | { ok: false; reason: string }

const B64 = '$b64'
const ESC = '$esc'

function toJson(v: unknown): unknown {
  if (v instanceof Uint8Array) return { [B64]: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') }
  if (v instanceof Map || typeof v === 'function' || typeof v === 'symbol' || typeof v === 'bigint') return undefined
  if (Array.isArray(v)) return v.map((x) => toJson(x) ?? null)
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v)) {
      const j = toJson(x)
      if (j !== undefined) out[k] = j
    }
    return B64 in out || ESC in out ? { [ESC]: out } : out
  }
  return v
}

function fromJson(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(fromJson)
  if (v === null || typeof v !== 'object') return v
  const o = v as Record<string, unknown>
  const keys = Object.keys(o)
  if (keys.length === 1 && keys[0] === B64 && typeof o[B64] === 'string') return Buffer.from(o[B64], 'base64')
  const src =
    keys.length === 1 && keys[0] === ESC && o[ESC] !== null && typeof o[ESC] === 'object' && !Array.isArray(o[ESC])
      ? (o[ESC] as Record<string, unknown>)
      : o
  const out: Record<string, unknown> = {}
  for (const [k, x] of Object.entries(src)) {
    if (k === '__proto__') continue // JSON.parse makes it an own key; assigning it would set the prototype
    out[k] = fromJson(x)
  }
  return out
}

/** One bus message from `node`, as the text published on a cluster channel. */
export function encodeBus(node: string, msg: WireMessage): string {
  return JSON.stringify({ v: BUS_CODEC_VERSION, n: node, m: toJson(msg) })
}

const isObj = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === 'object' && !Array.isArray(x)
const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x)

export function decodeBus(text: string | Buffer): DecodedBus {
  let raw: unknown
  try {
    raw = JSON.parse(typeof text === 'string' ? text : text.toString('utf8'))
  } catch {
    return { ok: false, reason: 'not JSON' }
  }
  if (!isObj(raw)) return { ok: false, reason: 'not an object' }
  if (raw.v !== BUS_CODEC_VERSION) return { ok: false, reason: `unknown version ${String(raw.v)}` }
  if (typeof raw.n !== 'string') return { ok: false, reason: 'no node id' }
  const m = fromJson(raw.m)
  if (!isObj(m)) return { ok: false, reason: 'no message' }
  if (m.type === 'batch') {
    if (!Array.isArray(m.msgs)) return { ok: false, reason: 'malformed batch' }
    for (const x of m.msgs) {
      const why = isObj(x) ? check(x) : 'no message'
      if (why !== undefined) return { ok: false, reason: `in a batch: ${why}` }
    }
  } else {
    const why = check(m)
    if (why !== undefined) return { ok: false, reason: why }
  }
  return { ok: true, node: raw.n, msg: m as unknown as WireMessage }
}

/** A committed message carried by a wake: the fields a session's delivery reads. */
function isMessage(x: unknown): boolean {
  return (
    isObj(x) &&
    isNum(x.seq) &&
    isNum(x.to) &&
    isNum(x.from) &&
    isNum(x.msgId) &&
    isNum(x.ts) &&
    isNum(x.flags) &&
    typeof x.kind === 'string' &&
    typeof x.fromName === 'string' &&
    Buffer.isBuffer(x.body)
  )
}

/** A Receipt (core/types.ts): what a session's adapter encodes of it. */
function isReceipt(x: unknown): boolean {
  return (
    isObj(x) &&
    isNum(x.msgId) &&
    isNum(x.status) &&
    isNum(x.recipient) &&
    typeof x.recipientName === 'string' &&
    isNum(x.seq) &&
    isNum(x.at) &&
    (x.topic === undefined || typeof x.topic === 'string')
  )
}

/** Why `m` is not a WireMessage other than a batch, or undefined if it is one. */
function check(m: Record<string, unknown>): string | undefined {
  switch (m.type) {
    case 'wake':
      if (!isNum(m.user)) return 'wake without user'
      if (m.msgs !== undefined && !(Array.isArray(m.msgs) && m.msgs.every(isMessage))) return 'malformed wake'
      break
    case 'event':
      if (!isNum(m.to) || !isObj(m.ev) || typeof m.ev.type !== 'string') return 'malformed event'
      break
    case 'receipt':
      if (!isNum(m.to) || !isReceipt(m.receipt) || !(m.pushed === undefined || m.pushed === true)) return 'malformed receipt'
      break
    case 'broadcast':
      if (!isNum(m.except) || !isObj(m.ev) || typeof m.ev.type !== 'string') return 'malformed broadcast'
      break
    case 'kick':
      // device null is a kick of every session of the user (a legacy name); absent is not null: malformed.
      if (
        !isNum(m.user) ||
        !(m.device === null || isNum(m.device)) ||
        typeof m.reason !== 'string' ||
        typeof m.node !== 'string' ||
        !isNum(m.since)
      )
        return 'malformed kick'
      break
    case 'revoke':
      if (!isNum(m.user) || !isNum(m.device)) return 'malformed revoke'
      break
    case 'where':
      if (!isNum(m.user) || !isNum(m.device) || typeof m.node !== 'string' || typeof m.online !== 'boolean')
        return 'malformed where'
      break
    case 'reaped':
      if (typeof m.node !== 'string') return 'malformed reaped'
      break
    default:
      return `unknown message type ${String(m.type)}`
  }
  return undefined
}
