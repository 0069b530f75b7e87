// Seed 002 codec: golden vectors (parse / generate / mirror), split-anywhere, limits, properties.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import {
  decodeDelivery,
  decodeMessage,
  decodeName,
  decodeString,
  encodeDelivery,
  encodeString,
  DEFAULT_LIMITS,
  type Decoded,
  type Delivery,
  type Limits,
} from '../../../src/protocols/p002/codec.js'

interface Vector {
  name: string
  source: string
  direction: 'client-to-server' | 'server-to-client'
  role?: 'name' | 'message'
  hex: string
  chunks?: string[]
  canonical?: boolean
  frame?: { value: string } | Delivery
  error?: 'malformed' | 'too-large'
}
const vectors = JSON.parse(readFileSync(new URL('../../vectors/p002/vectors.json', import.meta.url), 'utf8')) as Vector[]
const fuzz = { seed: Number(process.env.FUZZ_SEED ?? 2002), numRuns: Number(process.env.FUZZ_RUNS ?? 300) }
const bytes = (v: Vector) => Buffer.from(v.hex, 'hex')

function decodeVector(v: Vector, buf: Buffer): Decoded<string | Delivery> {
  if (v.direction === 'server-to-client') return decodeDelivery(buf)
  return v.role === 'name' ? decodeName(buf) : decodeMessage(buf)
}

/**
 * The adapter's loop over a client stream: first string is the name, then messages; the first
 * error ends the connection.
 */
function feedClient(chunks: Buffer[], limits: Limits = DEFAULT_LIMITS): (string | { error: string })[] {
  const out: (string | { error: string })[] = []
  let buf: Buffer = Buffer.alloc(0)
  for (const chunk of chunks) {
    buf = Buffer.concat([buf, chunk])
    for (;;) {
      const r = out.length === 0 ? decodeName(buf, limits) : decodeMessage(buf, limits)
      if (r.ok) {
        out.push(r.frame)
        buf = r.rest
        continue
      }
      if (r.reason === 'need-more') break
      out.push({ error: r.reason })
      return out
    }
  }
  return out
}
function feedServer(chunks: Buffer[]): Delivery[] {
  const out: Delivery[] = []
  let buf: Buffer = Buffer.alloc(0)
  for (const chunk of chunks) {
    buf = Buffer.concat([buf, chunk])
    for (let r = decodeDelivery(buf); r.ok; r = decodeDelivery(buf)) {
      out.push(r.frame)
      buf = r.rest
    }
  }
  return out
}
const cutEverywhere = (stream: Buffer) =>
  Array.from({ length: stream.length + 1 }, (_, cut) => [stream.subarray(0, cut), stream.subarray(cut)])
const byteByByte = (stream: Buffer) => [...stream].map((b) => Buffer.of(b))

for (const v of vectors) {
  if (v.frame !== undefined) {
    test(`002 parse: ${v.name}`, () => {
      const r = decodeVector(v, bytes(v))
      assert.ok(r.ok, JSON.stringify(r))
      assert.deepEqual(r.frame, 'value' in v.frame! ? v.frame.value : v.frame)
      assert.equal(r.rest.length, 0)
    })
    test(`002 generate: ${v.name}`, () => {
      const f = v.frame!
      const out = 'value' in f ? encodeString(f.value) : encodeDelivery(f)
      if (v.canonical) assert.equal(out.toString('hex'), v.hex)
      else {
        assert.notEqual(out.toString('hex'), v.hex)
        const again = decodeVector(v, out)
        assert.ok(again.ok)
        assert.deepEqual(again.frame, 'value' in f ? f.value : f)
      }
    })
  } else {
    test(`002 reject: ${v.name}`, () => {
      const r = decodeVector(v, bytes(v))
      assert.ok(!r.ok)
      assert.equal(r.reason, v.error)
    })
  }
}

test('002 captured writes: the size and the bytes arrive in separate chunks', () => {
  for (const v of vectors.filter((x) => x.chunks)) {
    const got = feedClient([encodeString('alice'), ...v.chunks!.map((c) => Buffer.from(c, 'hex'))])
    assert.deepEqual(got, ['alice', (v.frame as { value: string }).value])
  }
})

test('002 split-anywhere: client stream (name then messages), every cut and byte by byte', () => {
  const names = vectors.filter((v) => v.role === 'name' && v.frame)
  const messages = vectors.filter((v) => v.role === 'message' && v.frame)
  const stream = Buffer.concat([bytes(names[1]!), ...messages.map(bytes)])
  const whole = feedClient([stream])
  assert.deepEqual(whole, ['боб', ...messages.map((v) => (v.frame as { value: string }).value)])
  for (const chunks of cutEverywhere(stream)) assert.deepEqual(feedClient(chunks), whole)
  assert.deepEqual(feedClient(byteByByte(stream)), whole)
})

test('002 split-anywhere: server deliveries, every cut and byte by byte', () => {
  const deliveries = vectors.filter((v) => v.direction === 'server-to-client')
  const stream = Buffer.concat(deliveries.map(bytes))
  const whole = feedServer([stream])
  assert.deepEqual(
    whole,
    deliveries.map((v) => v.frame),
  )
  for (const chunks of cutEverywhere(stream)) assert.deepEqual(feedServer(chunks), whole)
  assert.deepEqual(feedServer(byteByByte(stream)), whole)
})

test('002 split-anywhere: a broken limit ends the stream the same way however bytes arrive', () => {
  const oversize = vectors.find((v) => v.error === 'too-large' && v.role === 'name')!
  for (const chunks of [[bytes(oversize)], byteByByte(bytes(oversize))])
    assert.deepEqual(feedClient(chunks), [{ error: 'too-large' }])
  const stream = Buffer.concat([encodeString('alice'), encodeString('ok'), Buffer.from('00000bb9', 'hex'), Buffer.alloc(10)])
  assert.deepEqual(feedClient(byteByByte(stream)), ['alice', 'ok', { error: 'too-large' }])
})

test('002 limits: judged from the 4 size bytes alone, before the string is buffered', () => {
  assert.deepEqual(decodeName(Buffer.from('000000', 'hex')), { ok: false, reason: 'need-more' })
  const name = decodeName(Buffer.from('0000001a', 'hex'))
  assert.ok(!name.ok && name.reason === 'too-large' && name.code === 'SB_ERR_TOO_LARGE')
  assert.deepEqual(decodeName(Buffer.from('00000019', 'hex')), { ok: false, reason: 'need-more' })
  assert.deepEqual(decodeMessage(Buffer.from('00000bb8', 'hex')), { ok: false, reason: 'need-more' })
  const custom: Limits = { maxUsernameBytes: 3, maxMessageBytes: 5 }
  assert.equal(decodeName(encodeString('боб'), custom).ok, false) // 6 bytes: limits count bytes
  assert.equal(decodeName(encodeString('bob'), custom).ok, true)
  assert.equal(decodeMessage(encodeString('123456'), custom).ok, false)
  assert.equal(decodeString(Buffer.from('ffffffff', 'hex'), 0xffffffff).ok, false) // need-more, no 4 GiB alloc
})

test('002 UTF-8: an invalid name is malformed, an invalid message is replaced', () => {
  const bad = Buffer.concat([Buffer.from('00000003', 'hex'), Buffer.of(0x61, 0xc0, 0x62)])
  const n = decodeName(bad)
  assert.ok(!n.ok && n.reason === 'malformed' && n.code === 'SB_ERR_MALFORMED')
  const m = decodeMessage(bad)
  assert.ok(m.ok)
  assert.equal(m.frame, 'a\ufffdb')
  // A BOM is content, not a marker: it survives.
  const bom = decodeName(encodeString('\ufeffx'))
  assert.ok(bom.ok)
  assert.equal(bom.frame, '\ufeffx')
})

test('002 deliveries: one Buffer, timestamp as u64 BE, out-of-range values refused', () => {
  const out = encodeDelivery({ timestamp: 1_795_317_618, name: 'alice', text: 'hello' })
  assert.equal(out.toString('hex'), '000000006b025f7200000005616c6963650000000568656c6c6f')
  assert.throws(() => encodeDelivery({ timestamp: -1, name: '', text: '' }), RangeError)
  assert.throws(() => encodeDelivery({ timestamp: 1.5, name: '', text: '' }), RangeError)
  const huge = Buffer.concat([Buffer.from('ffffffffffffffff', 'hex'), encodeString('a'), encodeString('b')])
  const r = decodeDelivery(huge)
  assert.ok(!r.ok && r.reason === 'malformed')
  assert.equal(decodeDelivery(encodeDelivery({ timestamp: Number.MAX_SAFE_INTEGER, name: 'a', text: 'b' })).ok, true)
})

const text = (maxBytes: number) =>
  fc.string({ unit: 'binary', maxLength: maxBytes }).filter((s) => Buffer.byteLength(s) <= maxBytes)

test(`002 property: decodeString(encodeString(s)) equals s (seed ${fuzz.seed})`, () => {
  fc.assert(
    fc.property(text(3000), (s) => {
      const r = decodeMessage(encodeString(s))
      assert.ok(r.ok)
      assert.equal(r.frame, s)
      assert.equal(r.rest.length, 0)
    }),
    fuzz,
  )
})

test(`002 property: decodeDelivery(encodeDelivery(d)) equals d (seed ${fuzz.seed})`, () => {
  fc.assert(
    fc.property(
      fc.record({ timestamp: fc.maxSafeNat(), name: text(25), text: text(3000) }).map((d) => ({ ...d })),
      (d) => {
        const r = decodeDelivery(encodeDelivery(d))
        assert.ok(r.ok)
        assert.deepEqual(r.frame, d)
      },
    ),
    fuzz,
  )
})

test(`002 property: a client stream split at random points decodes the same (seed ${fuzz.seed})`, () => {
  fc.assert(
    fc.property(text(25), fc.array(text(200), { maxLength: 6 }), fc.array(fc.nat(), { maxLength: 8 }), (name, msgs, cuts) => {
      const stream = Buffer.concat([name, ...msgs].map(encodeString))
      const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b)
      const chunks = [0, ...points].map((p, i, all) => stream.subarray(p, all[i + 1] ?? stream.length))
      assert.deepEqual(feedClient(chunks), [name, ...msgs])
    }),
    fuzz,
  )
})

test(`002 property: decoders never throw on arbitrary bytes and respect the limit (seed ${fuzz.seed})`, () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat({ max: 64 }), (arr, max) => {
      const buf = Buffer.from(arr)
      const limits = { maxUsernameBytes: max, maxMessageBytes: max }
      for (const r of [decodeName(buf, limits), decodeMessage(buf, limits), decodeDelivery(buf, limits)]) {
        if (r.ok) assert.ok(r.rest.length <= buf.length)
      }
      const s = decodeMessage(buf, limits)
      if (s.ok) assert.ok(buf.readUInt32BE(0) <= max && s.rest.length === buf.length - 4 - buf.readUInt32BE(0))
    }),
    fuzz,
  )
})
