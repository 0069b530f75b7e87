/**
 * The native protocol's frames, as data: one table drives the encoder, the decoder, the docs and the
 * test vectors (docs/protocol/native.md has the same table in prose). Other languages port this table.
 *
 *   frame   := u32 length | u8 type | u32 corr | fields…      (length counts everything after itself)
 *
 * Every integer is big-endian. `corr` is the client's correlation number for a request, echoed on its
 * reply; unsolicited server frames carry corr 0.
 */
import type { Address } from '../../core/types.js'
import { FIELD_LIST, type MESSAGE_FIELDS, type NativeField } from '../../schema/message.js'

/** Field types (§2 of docs/protocol/native.md). */
export type FieldType = 'u8' | 'u16' | 'u32' | 'u53' | 'str' | 'bytes' | 'addr' | 'msg' | 'msgs' | 'users' | 'items'

export const HEADER_BYTES = 9 // u32 length + u8 type + u32 corr
export const PROTOCOL_VERSION = 1

/** Address kinds on the wire. */
export const AddrKind = { USER: 0, NAME: 1, ALL: 2, SERVER: 3, TOPIC: 4 } as const

/** REQUEST / RESULT operations. */
export const Op = {
  WHOAMI: 1,
  WHO: 2,
  RENAME: 3,
  END: 4,
  DELETE_ACCOUNT: 5,
  STATS: 6,
  SUBSCRIBE: 7,
  UNSUBSCRIBE: 8,
  TOPICS: 9,
  SUBSCRIPTIONS: 10,
  BLOCK: 11,
  UNBLOCK: 12,
  BLOCKED: 13,
  PRESENCE: 14, // arg "on" / "off": receive PRESENCE frames
  LAST_SEEN: 15, // arg a name: users[0] with lastSeen (protocol and since empty / 0 when offline)
  DEVICES: 16, // text = JSON array of your devices: {id, label, createdAt, lastSeen, online, current}
  REVOKE: 17, // arg a device id in decimal: text = that id; the device's sessions get CLOSING revoked
  PASSWORD: 18, // arg JSON {"password": string|null, "current"?: string}: text = "ok"
  CONVERSATION: 20, // reply to CONV action 0 (request): text = conversation id
  UPLOAD: 21, // reply to FILE_BEGIN: text = upload id
} as const

/** CONV actions (client → server) and CONV_EVENT events (server → client). */
export const ConvAction = { REQUEST: 0, ACCEPT: 1, DECLINE: 2, MESSAGE: 3, CLOSE: 4 } as const
export const ConvEventCode = { request: 0, accepted: 1, declined: 2, message: 3, closed: 4, expired: 5 } as const

/**
 * LOGIN / REGISTER flags. PASSWORD and SEND_ONLY are LOGIN's only: PASSWORD makes a new device of the user named
 * by `name` (the `token` field carries the password); SEND_ONLY attaches beside the device's own session and is
 * handed nothing from the log (a one-shot command).
 */
export const SessionFlag = { POLL: 1, PASSWORD: 2, SEND_ONLY: 4 } as const

/** SEND flags: the same bits as the core's Flag (8, SENT, is the server's). TRANSIENT: live only, never stored. */
export const SendFlag = { RECEIPT: 1, READ_RECEIPT: 2, IDEMPOTENT: 4, TRANSIENT: 16 } as const

/** Bits of a `msg`'s flags: the sender's SEND flags, and SENT, which the server sets on a sent copy. */
export const MsgFlag = { ...SendFlag, SENT: 8 } as const

/** ACCEPTED status codes. */
export const SendStatusCode = { delivered: 0, queued: 1, stored: 2, scheduled: 3, duplicate: 4 } as const

type ScalarType = 'u8' | 'u32' | 'u53' | 'str' | 'bytes'
type WireValue<T> = T extends 'str' ? string : T extends 'bytes' ? Buffer : number

/**
 * A message on the wire (§3.7): the message schema's native fields (src/schema/message.ts), `kind` as its
 * code, an absent optional field as '' or 0.
 */
export type WireMessage = { [K in NativeField]: WireValue<(typeof MESSAGE_FIELDS)[K]['type']> }

/** The `msg` layout from the message schema, in wire order: [field, type]; a kind goes as its u8 code. */
export const MSG_FIELDS: readonly (readonly [NativeField, ScalarType])[] = FIELD_LIST.flatMap(([name, f]) =>
  f.native ? [[name as NativeField, f.type === 'kind' ? 'u8' : f.type] as const] : [],
)

export interface WireUser {
  id: number
  name: string
  protocol: string
  since: number
  lastSeen: number
}

export interface WireItem {
  name: string
  count: number
}

export interface FrameSpec {
  code: number
  /** c2s: client to server; s2c: server to client. */
  dir: 'c2s' | 's2c'
  fields: readonly (readonly [string, FieldType])[]
}

export const FRAMES = {
  // client → server
  REGISTER: {
    code: 0x01,
    dir: 'c2s',
    fields: [
      ['version', 'u16'],
      ['flags', 'u8'],
      ['name', 'str'],
    ],
  },
  LOGIN: {
    code: 0x02,
    dir: 'c2s',
    fields: [
      ['version', 'u16'],
      ['flags', 'u8'],
      ['id', 'u32'],
      ['name', 'str'],
      ['token', 'str'],
    ],
  },
  SEND: {
    code: 0x03,
    dir: 'c2s',
    fields: [
      ['msgId', 'u53'],
      ['to', 'addr'],
      ['kind', 'u8'],
      ['flags', 'u8'],
      ['ttlMs', 'u32'],
      ['notBefore', 'u53'],
      ['body', 'bytes'],
    ],
  },
  ACK: { code: 0x04, dir: 'c2s', fields: [['seq', 'u53']] },
  TAKE: {
    code: 0x05,
    dir: 'c2s',
    fields: [
      ['max', 'u16'],
      ['mode', 'u8'],
      ['waitMs', 'u32'],
    ],
  },
  READ: { code: 0x06, dir: 'c2s', fields: [['seq', 'u53']] },
  PING: { code: 0x07, dir: 'c2s', fields: [] },
  REQUEST: {
    code: 0x08,
    dir: 'c2s',
    fields: [
      ['op', 'u8'],
      ['arg', 'str'],
    ],
  },
  CONV: {
    code: 0x09,
    dir: 'c2s',
    fields: [
      ['action', 'u8'],
      ['convId', 'str'],
      ['to', 'addr'],
      ['body', 'bytes'],
    ],
  },
  FILE_BEGIN: {
    code: 0x0a,
    dir: 'c2s',
    fields: [
      ['msgId', 'u53'],
      ['to', 'addr'],
      ['flags', 'u8'],
      ['size', 'u53'],
      ['sha256', 'str'],
      ['name', 'str'],
      ['text', 'str'],
    ],
  },
  FILE_CHUNK: {
    code: 0x0b,
    dir: 'c2s',
    fields: [
      ['uploadId', 'str'],
      ['data', 'bytes'],
    ],
  },
  FILE_END: { code: 0x0c, dir: 'c2s', fields: [['uploadId', 'str']] },
  FILE_ABORT: { code: 0x0d, dir: 'c2s', fields: [['uploadId', 'str']] },
  DOWNLOAD: {
    code: 0x0e,
    dir: 'c2s',
    fields: [
      ['fileId', 'str'],
      ['offset', 'u53'],
      ['length', 'u53'],
    ],
  },
  BYE: { code: 0x0f, dir: 'c2s', fields: [] },
  HISTORY: {
    code: 0x10,
    dir: 'c2s',
    fields: [
      ['with', 'addr'],
      ['before', 'u53'],
      ['limit', 'u16'],
    ],
  },

  // server → client
  ERROR: {
    code: 0x40,
    dir: 's2c',
    fields: [
      ['code', 'u16'],
      ['limit', 'str'],
      ['message', 'str'],
    ],
  },
  WELCOME: {
    code: 0x41,
    dir: 's2c',
    fields: [
      ['version', 'u16'],
      ['id', 'u32'],
      ['name', 'str'],
      ['token', 'str'],
      ['heartbeatMs', 'u32'],
      ['server', 'str'],
    ],
  },
  DELIVER: { code: 0x42, dir: 's2c', fields: [['msg', 'msg']] },
  ACCEPTED: {
    code: 0x43,
    dir: 's2c',
    fields: [
      ['msgId', 'u53'],
      ['status', 'u8'],
      ['seq', 'u53'],
      ['recipients', 'u32'],
      ['fileId', 'str'],
    ],
  },
  RECEIPT: {
    code: 0x44,
    dir: 's2c',
    fields: [
      ['msgId', 'u53'],
      ['status', 'u16'],
      ['recipient', 'u32'],
      ['recipientName', 'str'],
      ['seq', 'u53'],
      ['at', 'u53'],
      ['topic', 'str'],
      ['ackSeq', 'u53'],
    ],
  },
  BATCH: { code: 0x45, dir: 's2c', fields: [['msgs', 'msgs']] },
  NOTICE: {
    code: 0x46,
    dir: 's2c',
    fields: [
      ['code', 'str'],
      ['text', 'str'],
    ],
  },
  PONG: { code: 0x47, dir: 's2c', fields: [] },
  RESULT: {
    code: 0x48,
    dir: 's2c',
    fields: [
      ['op', 'u8'],
      ['text', 'str'],
      ['users', 'users'],
      ['items', 'items'],
    ],
  },
  PRESENCE: {
    code: 0x49,
    dir: 's2c',
    fields: [
      ['id', 'u32'],
      ['name', 'str'],
      ['online', 'u8'],
      ['protocol', 'str'],
      ['at', 'u53'],
    ],
  },
  CONV_EVENT: {
    code: 0x4a,
    dir: 's2c',
    fields: [
      ['event', 'u8'],
      ['convId', 'str'],
      ['peerId', 'u32'],
      ['peerName', 'str'],
      ['expiresAt', 'u53'],
      ['reason', 'str'],
      ['body', 'bytes'],
    ],
  },
  RENAMED: {
    code: 0x4b,
    dir: 's2c',
    fields: [
      ['id', 'u32'],
      ['oldName', 'str'],
      ['newName', 'str'],
    ],
  },
  FILE_INFO: {
    code: 0x4c,
    dir: 's2c',
    fields: [
      ['fileId', 'str'],
      ['name', 'str'],
      ['size', 'u53'],
      ['sha256', 'str'],
    ],
  },
  FILE_DATA: {
    code: 0x4d,
    dir: 's2c',
    fields: [
      ['offset', 'u53'],
      ['last', 'u8'],
      ['data', 'bytes'],
    ],
  },
  READ_ELSEWHERE: {
    code: 0x4e,
    dir: 's2c',
    fields: [
      ['seq', 'u53'],
      ['at', 'u53'],
    ],
  },
  CLOSING: {
    code: 0x4f,
    dir: 's2c',
    fields: [
      ['reason', 'str'],
      ['text', 'str'],
    ],
  },
  HISTORY_PAGE: {
    code: 0x50,
    dir: 's2c',
    fields: [
      ['more', 'u8'],
      ['msgs', 'msgs'],
    ],
  },
} as const satisfies Record<string, FrameSpec>

export type FrameName = keyof typeof FRAMES

type FieldValue<T extends FieldType> = T extends 'u8' | 'u16' | 'u32' | 'u53'
  ? number
  : T extends 'str'
    ? string
    : T extends 'bytes'
      ? Buffer
      : T extends 'addr'
        ? Address
        : T extends 'msg'
          ? WireMessage
          : T extends 'msgs'
            ? WireMessage[]
            : T extends 'users'
              ? WireUser[]
              : T extends 'items'
                ? WireItem[]
                : never

type FieldsOf<F extends readonly (readonly [string, FieldType])[]> = {
  [K in F[number] as K[0]]: FieldValue<K[1]>
}

/** A decoded frame: its name, its corr and its fields, typed from the table. */
export type Frame = {
  [N in FrameName]: { type: N; corr: number } & FieldsOf<(typeof FRAMES)[N]['fields']>
}[FrameName]

export type FrameOf<N extends FrameName> = Extract<Frame, { type: N }>

export const FRAME_BY_CODE: ReadonlyMap<number, FrameName> = new Map(
  (Object.keys(FRAMES) as FrameName[]).map((n) => [FRAMES[n].code, n]),
)
