// The message schema (src/schema/message.ts) is the one place kinds and fields are declared: its codes are
// sound, and what is derived from it elsewhere (the vectors other languages read, the native doc, the HTTP
// JSON and OpenAPI schema, the wire `msg`) agrees with it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { FIELD_LIST, KIND_NAMES, MESSAGE_KINDS, kindCode, kindOf } from '../../src/schema/message.js'
import { FRAMES, MSG_FIELDS } from '../../src/protocols/native/frames.js'
import { decode, encode } from '../../src/protocols/native/codec.js'
import { toWireMessage } from '../../src/protocols/native/adapter.js'
import { messageJson } from '../../src/protocols/http/json.js'
import { components } from '../../src/protocols/http/routes-spec.js'
import { messageFromRow, type MessageColumns } from '../../src/store/rows.js'
import type { Message } from '../../src/core/types.js'
import type { WireMessage } from '../../src/protocols/native/frames.js'

const root = new URL('../../', import.meta.url)

test('every kind has a distinct code that fits the u8 on the wire, and kindOf inverts kindCode', () => {
  const codes = KIND_NAMES.map(kindCode)
  assert.equal(new Set(codes).size, codes.length, 'codes are distinct')
  for (const c of codes) assert.ok(Number.isInteger(c) && c >= 0 && c <= 255, `code ${c} is a u8`)
  for (const k of KIND_NAMES) assert.equal(kindOf(kindCode(k)), k)
  assert.equal(kindOf(255), undefined, 'an unknown code is no kind')
  assert.deepEqual([...KIND_NAMES].sort(), Object.keys(MESSAGE_KINDS).sort())
})

test('test/vectors/native/schema.json is what the schema says (regenerate: node --import tsx scripts/gen-native-vectors.ts)', () => {
  const vec = JSON.parse(readFileSync(new URL('test/vectors/native/schema.json', root), 'utf8')) as {
    kinds: Record<string, number>
    msg: [string, string][]
  }
  assert.deepEqual(vec.kinds, Object.fromEntries(KIND_NAMES.map((k) => [k, kindCode(k)])))
  assert.deepEqual(
    vec.msg,
    MSG_FIELDS.map(([n, t]) => [n, t]),
  )
})

test('docs/protocol/native.md §3.7 lists the msg fields in wire order with their types, and every kind with its code', () => {
  const doc = readFileSync(new URL('docs/protocol/native.md', root), 'utf8')
  const section = doc.slice(doc.indexOf('### 3.7'), doc.indexOf('### 3.8'))
  const fields = [...section.matchAll(/^\|\s*(\d+)\s*\|\s*`(\w+)`\s*\|\s*(\w+)\s*\|/gm)].map((m) => [m[2], m[3]])
  assert.deepEqual(
    fields,
    MSG_FIELDS.map(([n, t]) => [n, t]),
  )
  const kinds = [...section.matchAll(/^\|\s*(\d+)\s*\|\s*`(\w+)`\s*\|\s*[^|`]/gm)]
    .filter((m) => !MSG_FIELDS.some(([n]) => n === m[2]))
    .map((m) => [m[2], Number(m[1])])
  assert.deepEqual(
    kinds,
    KIND_NAMES.map((k) => [k, kindCode(k)]),
  )
})

const sample: Message = {
  seq: 7,
  msgId: 9,
  from: 1,
  fromName: 'alice',
  to: 2,
  topic: 'news',
  kind: 'file',
  ts: 1_700_000_000_000,
  body: Buffer.from('{"fileId":"f1"}'),
  flags: 3,
  expiresAt: 1_700_000_060_000,
  notBefore: 1_700_000_001_000,
  fileId: 'f1',
  peer: 1,
  device: 4,
}

/** A msg's bytes written field by field from MSG_FIELDS: the schema's layout, independent of the codec. */
function schemaBytes(w: WireMessage): Buffer {
  const parts: Buffer[] = []
  for (const [name, t] of MSG_FIELDS) {
    const v = w[name]
    if (t === 'u8') parts.push(Buffer.from([v as number]))
    else if (t === 'u32') {
      const b = Buffer.alloc(4)
      b.writeUInt32BE(v as number)
      parts.push(b)
    } else if (t === 'u53') {
      const b = Buffer.alloc(8)
      b.writeBigUInt64BE(BigInt(v as number))
      parts.push(b)
    } else {
      const data = t === 'str' ? Buffer.from(v as string, 'utf8') : (v as Buffer)
      const len = Buffer.alloc(t === 'str' ? 2 : 4)
      if (t === 'str') len.writeUInt16BE(data.length)
      else len.writeUInt32BE(data.length)
      parts.push(len, data)
    }
  }
  return Buffer.concat(parts)
}

test('the native msg is the schema layout: toWireMessage takes every native field, the codec writes and reads them in order', () => {
  const w = toWireMessage(sample)
  assert.deepEqual(Object.keys(w).sort(), MSG_FIELDS.map(([n]) => n).sort())
  for (const [name] of MSG_FIELDS)
    assert.deepEqual(w[name], name === 'kind' ? MESSAGE_KINDS.file.code : sample[name], `${name} carried`)
  const bytes = schemaBytes(w)
  assert.deepEqual(encode({ type: 'DELIVER', corr: 0, msg: w }).subarray(9), bytes, 'the codec writes the schema order')
  const header = Buffer.alloc(9)
  header.writeUInt32BE(5 + bytes.length)
  header[4] = FRAMES.DELIVER.code // corr 0
  const read = decode(Buffer.concat([header, bytes]), 1 << 20)
  assert.ok(read.ok && read.frame.type === 'DELIVER')
  assert.deepEqual(read.frame.msg, w, 'the codec reads the schema order')
  const bare = toWireMessage({ ...sample, kind: 'text', topic: undefined, expiresAt: undefined, fileId: undefined })
  assert.deepEqual([bare.topic, bare.expiresAt, bare.fileId, bare.kind], ['', 0, '', 0], 'absent fields are empty')
})

test('the HTTP JSON has the schema JSON fields (kind by name), and the OpenAPI Message schema lists exactly those', () => {
  const j = messageJson(sample) as unknown as Record<string, unknown>
  const jsonFields = FIELD_LIST.filter(([, f]) => f.json).map(([n]) => n)
  for (const n of jsonFields) assert.ok(n in j, `${n} is in the JSON`)
  assert.equal(j.kind, 'file')
  assert.equal(j.text, '{"fileId":"f1"}')
  const bare = messageJson({
    ...sample,
    topic: undefined,
    expiresAt: 0,
    notBefore: undefined,
    fileId: '',
    peer: undefined,
  }) as unknown as Record<string, unknown>
  for (const n of ['topic', 'expiresAt', 'notBefore', 'fileId', 'peer']) assert.ok(!(n in bare), `absent ${n} is left out`)

  const schema = components.Message as { required: string[]; properties: Record<string, { enum?: string[] }> }
  assert.deepEqual(Object.keys(schema.properties), [...jsonFields, 'text', 'base64', 'receipt'])
  assert.deepEqual(
    schema.required,
    FIELD_LIST.filter(([, f]) => f.json && f.optional !== true).map(([n]) => n),
  )
  assert.deepEqual(schema.properties.kind?.enum, [...KIND_NAMES])
})

test('a row with every column of the schema reads back with every field set', () => {
  const row: Record<string, unknown> = {}
  for (const [name, f] of FIELD_LIST) {
    if (f.column === null) continue
    row[f.column] = name === 'kind' ? MESSAGE_KINDS.file.code : (sample as unknown as Record<string, unknown>)[name]
  }
  const back = messageFromRow(row as MessageColumns, sample.to)
  assert.deepEqual(back, sample)
})
