// Seed 001 codec: golden vectors (parse / generate / mirror), split-anywhere, limits, properties.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import {
  AnswerCode,
  decode,
  encode,
  encodeAnswer,
  answer,
  nameFits,
  FrameType,
  HEADER_BYTES,
  MAX_TEXT_BYTES,
  type Frame,
  type Limits,
} from '../../../src/protocols/p001/codec.js'

interface Vector {
  name: string
  source: string
  direction: string
  hex: string
  canonical?: boolean
  frame?: Frame
  error?: 'malformed' | 'too-large'
}
const vectors = JSON.parse(readFileSync(new URL('../../vectors/p001/vectors.json', import.meta.url), 'utf8')) as Vector[]
const good = vectors.filter((v) => v.frame !== undefined)
const bad = vectors.filter((v) => v.error !== undefined)

// Fixed seed by default so a run is repeatable; fast-check prints seed and path on failure.
const fuzz = { seed: Number(process.env.FUZZ_SEED ?? 1001), numRuns: Number(process.env.FUZZ_RUNS ?? 300) }

type Event = { frame: Frame; raw: string } | { error: string }
/** The adapter's loop: append each chunk, decode until need-more; stop at the first error. */
function feed(chunks: Buffer[], limits?: Limits): Event[] {
  const out: Event[] = []
  let buf: Buffer = Buffer.alloc(0)
  for (const chunk of chunks) {
    buf = Buffer.concat([buf, chunk])
    for (;;) {
      const r = decode(buf, limits)
      if (r.ok) {
        out.push({ frame: r.frame, raw: r.raw.toString('hex') })
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
const bytes = (v: Vector) => Buffer.from(v.hex, 'hex')

test('001 vectors: at least one from every capture direction, all well-formed JSON', () => {
  assert.ok(good.length >= 10 && bad.length >= 3)
  assert.ok(vectors.some((v) => v.source.startsWith('captures/') && v.direction === 'server-to-client'))
})

for (const v of good) {
  test(`001 parse: ${v.name}`, () => {
    const buf = bytes(v)
    const r = decode(buf)
    assert.ok(r.ok, JSON.stringify(r))
    assert.deepEqual(r.frame, v.frame)
    assert.equal(r.raw.toString('hex'), v.hex)
    assert.equal(r.rest.length, 0)
  })
  test(`001 generate: ${v.name}`, () => {
    const out = encode(v.frame as Frame)
    if (v.canonical) assert.equal(out.toString('hex'), v.hex)
    else {
      // Garbage after a NUL, a missing NUL, replaced bytes: our bytes differ but mean the same.
      assert.notEqual(out.toString('hex'), v.hex)
      const again = decode(out)
      assert.ok(again.ok)
      assert.deepEqual(again.frame, v.frame)
    }
  })
}

for (const v of bad) {
  test(`001 reject: ${v.name}`, () => {
    const r = decode(bytes(v))
    assert.ok(!r.ok)
    assert.equal(r.reason, v.error)
    assert.match(r.detail, /\S/)
  })
}

test('001 split-anywhere: every cut point and byte by byte yield the same frames', () => {
  const stream = Buffer.concat(good.map(bytes))
  const whole = feed([stream])
  assert.equal(whole.length, good.length)
  assert.deepEqual(
    whole.map((e) => ('frame' in e ? e.frame : e)),
    good.map((v) => v.frame),
  )
  for (let cut = 0; cut <= stream.length; cut++) {
    assert.deepEqual(feed([stream.subarray(0, cut), stream.subarray(cut)]), whole, `cut at ${cut}`)
  }
  assert.deepEqual(feed([...stream].map((b) => Buffer.of(b))), whole)
})

test('001 split-anywhere: errors are reported the same way however the bytes arrive', () => {
  for (const v of bad) {
    const buf = Buffer.concat([bytes(good[0] as Vector), bytes(v), Buffer.alloc(30)])
    const whole = feed([buf])
    assert.deepEqual(whole.at(-1), { error: v.error })
    assert.deepEqual(feed([...buf].map((b) => Buffer.of(b))), whole, v.name)
  }
})

test('001 limits: every len below 24 is malformed, judged from the 2 length bytes alone', () => {
  for (let len = 0; len < HEADER_BYTES; len++) {
    const head = Buffer.alloc(2)
    head.writeUInt16LE(len)
    const r = decode(head)
    assert.ok(!r.ok && r.reason === 'malformed', `len ${len}`)
  }
  assert.deepEqual(decode(Buffer.of(24)), { ok: false, reason: 'need-more' })
  assert.deepEqual(decode(Buffer.alloc(0)), { ok: false, reason: 'need-more' })
})

test('001 limits: too-large is decided before the body arrives, max is configurable', () => {
  const r = decode(Buffer.from('ffff', 'hex'))
  assert.ok(!r.ok && r.reason === 'too-large' && r.code === 'SB_ERR_TOO_LARGE')
  const frame: Frame = { type: 0, messageId: 1, src: 'a', dst: 'b', text: 'x'.repeat(100) }
  const buf = encode(frame) // len 125
  assert.equal(decode(buf, { maxFrameBytes: 125 }).ok, true)
  const small = decode(buf.subarray(0, 2), { maxFrameBytes: 124 })
  assert.ok(!small.ok && small.reason === 'too-large')
  // A raised limit admits frames the original would refuse (len up to 65535).
  const big = Buffer.alloc(2000)
  big.writeUInt16LE(2000, 0)
  big.write('a', 8)
  big.write('b', 16)
  assert.equal(decode(big).ok, false)
  assert.equal(decode(big, { maxFrameBytes: 0xffff }).ok, true)
})

test('001 wrong lengths: a len shorter than the bytes leaves the rest for the next frame', () => {
  const a = encode({ type: 0, messageId: 5, src: 'al', dst: 'bo', text: 'hello' })
  const shortened = Buffer.from(a)
  shortened.writeUInt16LE(a.length - 3, 0) // claims 3 bytes less: "hel" + "lo\0" becomes the rest
  const r = decode(shortened)
  assert.ok(r.ok)
  assert.equal(r.frame.text, 'hel')
  assert.equal(r.rest.toString('latin1'), 'lo\0')
  // …and the rest then reads as a len of 0x6f6c = 28524: too large, the connection is closed.
  const next = decode(r.rest)
  assert.ok(!next.ok && next.reason === 'too-large')
})

test('001 UTF-8: names must be valid (malformed), text is replaced with U+FFFD', () => {
  const f = encode({ type: 0, messageId: 1, src: 'a', dst: 'b', text: 'ok' })
  const badDst = Buffer.from(f)
  badDst[16] = 0xc3 // a lead byte with no continuation
  const r = decode(badDst)
  assert.ok(!r.ok && r.reason === 'malformed' && /dst/.test(r.detail))
  const badText = Buffer.from(f)
  badText[24] = 0xe2
  const t = decode(badText)
  assert.ok(t.ok)
  assert.equal(t.frame.text, '\ufffdk')
  assert.equal(t.raw[24], 0xe2, 'raw keeps the exact bytes for forwarding')
})

test('001 text: only the one terminating NUL is stripped, inner NULs are kept', () => {
  const f = encode({ type: 0, messageId: 1, src: 'a', dst: 'b', text: 'a\0b\0' })
  assert.equal(f.subarray(24).toString('latin1'), 'a\0b\0\0')
  const r = decode(f)
  assert.ok(r.ok)
  assert.equal(r.frame.text, 'a\0b\0')
})

test('001 answers: type 1, same messageID, src/dst swapped, body "200\\0" / "300\\0"', () => {
  const msg = decode(bytes(good[0] as Vector))
  assert.ok(msg.ok)
  const canonical300 = vectors.find((v) => v.name.startsWith('canonical answer 300')) as Vector
  assert.equal(encodeAnswer(msg.frame, AnswerCode.NOT_DELIVERED).toString('hex'), canonical300.hex)
  const a = answer(msg.frame, AnswerCode.DELIVERED)
  assert.deepEqual(a, { type: FrameType.ANSWER, messageId: 1, src: 'bob', dst: 'alice', text: '200' })
  assert.equal(encode(a).length, 28)
})

test('001 encode refuses what does not fit the wire', () => {
  const base: Frame = { type: 0, messageId: 0, src: 'a', dst: 'b', text: '' }
  assert.equal(encode({ ...base, text: 'x'.repeat(MAX_TEXT_BYTES) }).length, 1024)
  assert.throws(() => encode({ ...base, text: 'x'.repeat(MAX_TEXT_BYTES + 1) }), RangeError)
  assert.throws(() => encode({ ...base, src: 'abcdefghi' }), RangeError)
  assert.throws(() => encode({ ...base, src: 'пятьб' }), RangeError) // 10 bytes
  assert.throws(() => encode({ ...base, dst: 'a\0b' }), RangeError)
  assert.throws(() => encode({ ...base, type: 65536 }), RangeError)
  assert.throws(() => encode({ ...base, messageId: -1 }), RangeError)
  assert.throws(() => encode({ ...base, messageId: 2 ** 32 }), RangeError)
  assert.equal(nameFits('abcdefg'), true)
  assert.equal(nameFits('abcdefgh'), false)
  assert.equal(nameFits(''), false)
  assert.equal(nameFits('ёжик'), false) // 8 bytes
})

const nameArb = fc.string({ unit: 'binary', maxLength: 8 }).filter((s) => !s.includes('\0') && Buffer.byteLength(s) <= 8)
const frameArb: fc.Arbitrary<Frame> = fc
  .record({
    type: fc.integer({ min: 0, max: 0xffff }),
    messageId: fc.integer({ min: 0, max: 0xffffffff }),
    src: nameArb,
    dst: nameArb,
    text: fc.string({ unit: 'binary', maxLength: 400 }).filter((s) => Buffer.byteLength(s) <= MAX_TEXT_BYTES),
  })
  .map((f) => ({ ...f })) // fc.record builds null-prototype objects; deepEqual compares prototypes

test(`001 property: decode(encode(f)) equals f (seed ${fuzz.seed})`, () => {
  fc.assert(
    fc.property(frameArb, (f) => {
      const r = decode(encode(f))
      assert.ok(r.ok)
      assert.deepEqual(r.frame, f)
      assert.equal(r.rest.length, 0)
    }),
    fuzz,
  )
})

test(`001 property: a random stream of frames split at random points decodes the same (seed ${fuzz.seed})`, () => {
  fc.assert(
    fc.property(fc.array(frameArb, { minLength: 1, maxLength: 5 }), fc.array(fc.nat(), { maxLength: 8 }), (frames, cuts) => {
      const stream = Buffer.concat(frames.map(encode))
      const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b)
      const chunks = [0, ...points].map((p, i, all) => stream.subarray(p, all[i + 1] ?? stream.length))
      assert.deepEqual(
        feed(chunks).map((e) => ('frame' in e ? e.frame : e)),
        frames,
      )
    }),
    fuzz,
  )
})

test(`001 property: decode never throws on arbitrary bytes and its verdict is consistent (seed ${fuzz.seed})`, () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 1100 }), fc.integer({ min: 0, max: 0xffff }), (arr, max) => {
      const buf = Buffer.from(arr)
      const r = decode(buf, { maxFrameBytes: max })
      if (!r.ok) return
      const len = buf.readUInt16LE(0)
      assert.ok(len >= HEADER_BYTES && len <= max && len <= buf.length)
      assert.equal(r.raw.length, len)
      assert.equal(r.rest.length, buf.length - len)
    }),
    fuzz,
  )
})
