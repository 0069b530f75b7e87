/**
 * The message schema: every message kind with its numeric code, and every field of a message, declared once.
 * Everything else follows from here:
 *   - the core's `Message` type (src/core/types.ts),
 *   - the stores' columns (src/store/rows.ts): the stored `kind` is the kind's code,
 *   - the native wire's `msg` (src/protocols/native/frames.ts): its fields in this order, `kind` as the code,
 *   - the HTTP JSON and its OpenAPI schema (src/protocols/http/json.ts, routes-spec.ts),
 *   - the SDK's kind names (src/client/),
 *   - test/vectors/native/schema.json (scripts/gen-native-vectors.ts), from which the Python, C++, C# and CGI
 *     clients' tests check their own constants.
 * The per-message mappings on hot paths (the codec's msg, toWireMessage, messageFromRow, messageJson) are spelled
 * out for speed; their types come from here, and test/unit/message-schema.test.ts checks them field by field.
 *
 * A code is forever: it is in every data directory, PostgreSQL row and client ever written. Add a kind with the
 * next free code; never renumber or reuse one. Pure data and types: imports nothing.
 */

export interface KindSpec {
  /** The number stored in the `kind` column and sent in the native `kind` byte (0–255). */
  readonly code: number
  readonly doc: string
}

export const MESSAGE_KINDS = {
  text: { code: 0, doc: 'text as UTF-8' },
  file: { code: 1, doc: 'a stored file: the body describes it (JSON), fileId names it' },
  receipt: { code: 2, doc: 'a receipt that waited in the queue while its sender was away (JSON body)' },
  notice: { code: 3, doc: 'a reply or notice from SERVER (id 0)' },
  control: { code: 4, doc: 'reserved for control messages; not sent today' },
} as const satisfies Record<string, KindSpec>

export type MessageKind = keyof typeof MESSAGE_KINDS
/** The code of each kind, as a type: `KindCode<'receipt'>` is 2. */
export type KindCode<K extends MessageKind = MessageKind> = (typeof MESSAGE_KINDS)[K]['code']

/** Kind names in code order. */
export const KIND_NAMES: readonly MessageKind[] = (Object.keys(MESSAGE_KINDS) as MessageKind[]).sort(
  (a, b) => MESSAGE_KINDS[a].code - MESSAGE_KINDS[b].code,
)

const kindByCode = new Map<number, MessageKind>(KIND_NAMES.map((k) => [MESSAGE_KINDS[k].code, k]))

export function kindCode(kind: MessageKind): number {
  return MESSAGE_KINDS[kind].code
}

/** The kind with this code; undefined for a code no kind has (a newer peer's kind, or garbage). */
export function kindOf(code: number): MessageKind | undefined {
  return kindByCode.get(code)
}

/**
 * Value types: unsigned integers of 8, 32 or 53 bits (53: exact in a double), UTF-8 text, raw bytes, and
 * `kind` (a MessageKind by name in the core and JSON, by code in a column and on the wire).
 */
export type ValueType = 'u8' | 'u32' | 'u53' | 'str' | 'bytes' | 'kind'

export interface FieldSpec {
  readonly type: ValueType
  /** Absent when it does not apply: undefined in the core, NULL in a column, '' or 0 on the native wire, left out of JSON. */
  readonly optional?: true
  /** The stores' column; null when the stores keep it otherwise (the recipient is each store's own key column). */
  readonly column: string | null
  /** Carried by the native `msg` (docs/protocol/native.md §3.7), in declaration order. */
  readonly native: boolean
  /** In the HTTP JSON form of a message (the body is not: it goes as `text` or `base64`). */
  readonly json: boolean
  readonly doc: string
}

/** The fields of a message. The order of the keys is the native wire order. */
export const MESSAGE_FIELDS = {
  seq: {
    type: 'u53',
    column: 'seq',
    native: true,
    json: true,
    doc: "Position in the recipient's queue, from 1, gap-free per recipient; 0 when not stored (room messages, SERVER replies).",
  },
  msgId: {
    type: 'u53',
    column: 'msg_id',
    native: true,
    json: true,
    doc: "The sender's own id for the message (0 if it gave none), echoed in receipts.",
  },
  from: { type: 'u32', column: 'sender', native: true, json: true, doc: "The sender's user id (0 = SERVER)." },
  fromName: {
    type: 'str',
    column: 'sender_name',
    native: true,
    json: true,
    doc: "The sender's name when it sent the message.",
  },
  to: {
    type: 'u32',
    column: null,
    native: true,
    json: true,
    doc: "The recipient's user id, or 4294967295 (ALL) for a room message.",
  },
  topic: {
    type: 'str',
    optional: true,
    column: 'topic',
    native: true,
    json: true,
    doc: 'The topic, for a topic copy.',
  },
  kind: { type: 'kind', column: 'kind', native: true, json: true, doc: 'What the body is.' },
  flags: {
    type: 'u8',
    column: 'flags',
    native: true,
    json: true,
    doc: "The sender's flags. Bits: 1 receipt wanted, 2 read receipt wanted, 4 idempotent, 8 a sent copy (this user sent it, from one of its devices; `peer` is whom to).",
  },
  ts: { type: 'u53', column: 'ts', native: true, json: true, doc: 'When the server accepted it, ms since the epoch.' },
  expiresAt: {
    type: 'u53',
    optional: true,
    column: 'expires_at',
    native: true,
    json: true,
    doc: 'When it expires, ms since the epoch (dropped, and the sender told, after this).',
  },
  notBefore: {
    type: 'u53',
    optional: true,
    column: 'not_before',
    native: false,
    json: true,
    doc: 'Not delivered before this, ms since the epoch.',
  },
  fileId: {
    type: 'str',
    optional: true,
    column: 'file_id',
    native: true,
    json: true,
    doc: 'For kind file: the id of the stored file the body describes.',
  },
  body: { type: 'bytes', column: 'body', native: true, json: false, doc: 'Text as UTF-8, or what the kind says.' },
  peer: {
    type: 'u32',
    optional: true,
    column: 'peer',
    native: false,
    json: true,
    doc: "The other party of a direct message: its sender for one received, its recipient for a sent copy (on the native wire a sent copy's `to`). Absent for topic, room and SERVER messages and receipts.",
  },
  device: {
    type: 'u32',
    optional: true,
    column: 'device',
    native: false,
    json: false,
    doc: 'For a sent copy: the device it was sent from (which is not handed its own copy).',
  },
} as const satisfies Record<string, FieldSpec>

type Fields = typeof MESSAGE_FIELDS
export type MessageField = keyof Fields
type OptionalField = { [K in MessageField]: Fields[K] extends { optional: true } ? K : never }[MessageField]
type RequiredField = Exclude<MessageField, OptionalField>
type Flatten<T> = { [K in keyof T]: T[K] }

/** A value of a type in the core (a Buffer body, a kind by name). */
export type CoreValue<T extends ValueType> = T extends 'str'
  ? string
  : T extends 'bytes'
    ? Buffer
    : T extends 'kind'
      ? MessageKind
      : number

/** A message's fields as the core holds them. */
export type MessageRecord = Flatten<
  { [K in RequiredField]: CoreValue<Fields[K]['type']> } & { [K in OptionalField]?: CoreValue<Fields[K]['type']> | undefined }
>

/** The fields carried by the native `msg`, in wire order. */
export type NativeField = { [K in MessageField]: Fields[K]['native'] extends true ? K : never }[MessageField]
/** The fields in the HTTP JSON form. */
export type JsonField = { [K in MessageField]: Fields[K]['json'] extends true ? K : never }[MessageField]

/** The fields of the message, in declaration (native wire) order, each with its spec. */
export const FIELD_LIST: readonly (readonly [MessageField, FieldSpec])[] = Object.entries(MESSAGE_FIELDS) as [
  MessageField,
  FieldSpec,
][]

/** A field's value in the core as it goes into a column: the kind's code, NULL for an absent optional field. */
export type ColumnValue<F extends FieldSpec> =
  (F['type'] extends 'kind' ? number : CoreValue<F['type']>) | (F extends { optional: true } ? null : never)

/** A stored message's columns (all but the recipient), typed from the schema: `{ seq: number; msg_id: number; … }`. */
export type MessageColumns = {
  [K in MessageField as Fields[K]['column'] extends string ? Fields[K]['column'] : never]: ColumnValue<Fields[K]>
}

/** The JSON form's fields, but for the body: the kind by name, absent optional fields left out. */
export type MessageJsonFields = Flatten<
  { [K in Exclude<JsonField, OptionalField>]: CoreValue<Fields[K]['type']> } & {
    [K in Extract<JsonField, OptionalField>]?: CoreValue<Fields[K]['type']>
  }
>
