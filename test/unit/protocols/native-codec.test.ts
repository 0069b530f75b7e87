// Native codec: golden vectors (parse / generate / mirror), split at every offset and byte by byte through
// FrameReader, invalid inputs, too-large skipping, and seeded fast-check properties over every frame type.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import { decode, encode, FrameReader, type Decoded } from '../../../src/protocols/native/codec.js'
import {
  FRAMES,
  FRAME_BY_CODE,
  HEADER_BYTES,
  type FieldType,
  type Frame,
  type FrameName,
} from '../../../src/protocols/native/frames.js'
import type { Address } from '../../../src/core/types.js'

interface GoodVector {
  name: string
  dir: 'c2s' | 's2c'
  hex: string
  frame: Record<string, unknown>
}
interface InvalidVector {
  name: string
  hex: string
  maxFrameBytes?: number
  outcome: 'need-more' | 'malformed' | 'too-large'
  size?: number
  corr?: number
}

const load = <T>(file: string): T =>
  JSON.parse(readFileSync(new URL(`../../vectors/native/${file}`, import.meta.url), 'utf8')) as T
const good = load<GoodVector[]>('frames.json')
const invalid = load<InvalidVector[]>('invalid.json')

const DEFAULT_MAX = 1024 * 1024
// Fixed seed by default so a run is repeatable; fast-check prints the seed and path of a failure so it can be
// replayed with FUZZ_SEED. FUZZ_RUNS raises the number of runs (npm run test:fuzz).
const seed = Number(process.env.FUZZ_SEED ?? 20240607)
const numRuns = Number(process.env.FUZZ_RUNS ?? 200)
const fuzz = { seed, numRuns }

/** The vectors' JSON conventions (test/vectors/README.md): {"$hex": …} is a Buffer. */
function fromJson(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(fromJson)
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>
    if (typeof o.$hex === 'string' && Object.keys(o).length === 1) return Buffer.from(o.$hex, 'hex')
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, fromJson(x)]))
  }
  return v
}
const frameOf = (v: GoodVector): Frame => fromJson(v.frame) as Frame
const bytesOf = (v: { hex: string }): Buffer => Buffer.from(v.hex, 'hex')

function frames(results: Decoded[]): Frame[] {
  return results.map((d) => {
    assert.ok(d.ok, `expected a frame, got ${JSON.stringify(d)}`)
    return d.frame
  })
}

test('vectors cover every frame type of the table, with unique names and the right direction', () => {
  const names = new Set(good.map((v) => v.name))
  assert.equal(names.size, good.length, 'vector names are unique')
  for (const n of Object.keys(FRAMES) as FrameName[]) {
    const vs = good.filter((v) => v.frame.type === n)
    assert.ok(vs.length >= 1, `a vector for ${n}`)
    for (const v of vs) assert.equal(v.dir, FRAMES[n].dir, v.name)
  }
  assert.ok(good.some((v) => v.dir === 'c2s') && good.some((v) => v.dir === 's2c'))
  for (const kind of ['user', 'name', 'all', 'server', 'topic'])
    assert.ok(
      good.some((v) => (v.frame.to as { kind?: string } | undefined)?.kind === kind),
      `an address of kind ${kind}`,
    )
})

for (const v of good) {
  test(`vector: ${v.name}`, () => {
    const bytes = bytesOf(v)
    const expected = frameOf(v)
    // parse
    const d = decode(bytes, DEFAULT_MAX)
    assert.ok(d.ok, `decodes: ${JSON.stringify(d)}`)
    assert.deepStrictEqual(d.frame, expected)
    assert.equal(d.rest.length, 0)
    // generate
    assert.equal(encode(expected).toString('hex'), v.hex)
    // mirror
    const again = decode(encode(d.frame), DEFAULT_MAX)
    assert.ok(again.ok)
    assert.deepStrictEqual(again.frame, expected)
    // the header: the length counts everything after itself, then the type code and corr
    assert.equal(bytes.readUInt32BE(0), bytes.length - 4)
    assert.equal(bytes[4], FRAMES[expected.type].code)
    assert.equal(bytes.readUInt32BE(5), expected.corr)
    // the size limit is inclusive: exactly the frame's size decodes, one byte less is too large
    assert.ok(decode(bytes, bytes.length).ok)
    const tight = decode(bytes, bytes.length - 1)
    assert.ok(!tight.ok && tight.reason === 'too-large' && tight.size === bytes.length && tight.corr === expected.corr)
  })
}

test('every vector split at every offset through FrameReader gives the same frame', () => {
  for (const v of good) {
    const bytes = bytesOf(v)
    const expected = frameOf(v)
    for (let cut = 0; cut <= bytes.length; cut++) {
      const r = new FrameReader(DEFAULT_MAX)
      const out = [...r.push(bytes.subarray(0, cut)), ...r.push(bytes.subarray(cut))]
      assert.deepStrictEqual(frames(out), [expected], `${v.name} cut at ${cut}`)
      assert.equal(r.pending, 0)
    }
  }
})

test('every vector fed byte by byte gives the frame only at the last byte', () => {
  for (const v of good) {
    const bytes = bytesOf(v)
    const r = new FrameReader(DEFAULT_MAX)
    for (let i = 0; i < bytes.length - 1; i++) assert.deepStrictEqual(r.push(bytes.subarray(i, i + 1)), [], `${v.name} byte ${i}`)
    assert.deepStrictEqual(frames(r.push(bytes.subarray(bytes.length - 1))), [frameOf(v)], v.name)
  }
})

test('all vectors back to back in one chunk decode in order', () => {
  const all = Buffer.concat(good.map(bytesOf))
  const out = frames(new FrameReader(DEFAULT_MAX).push(all))
  assert.deepStrictEqual(out, good.map(frameOf))
})

for (const v of invalid) {
  test(`invalid: ${v.name} → ${v.outcome}`, () => {
    const d = decode(bytesOf(v), v.maxFrameBytes ?? DEFAULT_MAX)
    assert.equal(d.ok, false)
    if (d.ok) return
    assert.equal(d.reason, v.outcome)
    if (d.reason === 'too-large') {
      assert.equal(d.size, v.size)
      assert.equal(d.skip, v.size)
      if (v.corr !== undefined) assert.equal(d.corr, v.corr)
    }
    if (d.reason === 'malformed') {
      assert.equal(d.corr, v.corr ?? 0)
      assert.ok(d.detail.length > 0, 'a malformed result says what is wrong')
    }
  })
}

test('a malformed frame is reported once by FrameReader, and what follows it is dropped', () => {
  const bad = invalid.find((v) => v.name.startsWith('unknown frame type 0x30'))!
  const ping = encode({ type: 'PING', corr: 2 })
  const r = new FrameReader(DEFAULT_MAX)
  const out = r.push(Buffer.concat([encode({ type: 'PING', corr: 1 }), bytesOf(bad), ping]))
  assert.equal(out.length, 2)
  assert.ok(out[0]!.ok && out[0]!.frame.type === 'PING')
  assert.ok(!out[1]!.ok && out[1]!.reason === 'malformed')
  assert.equal(r.pending, 0)
})

test('too large: the frame is skipped and the valid frame after it still decodes, in every split', () => {
  const limit = 64
  const big = encode({
    type: 'SEND',
    corr: 5,
    msgId: 1,
    to: { kind: 'user', id: 2 },
    kind: 0,
    flags: 0,
    ttlMs: 0,
    notBefore: 0,
    body: Buffer.alloc(200, 0x61),
  })
  const after: Frame = { type: 'PING', corr: 6 }
  const stream = Buffer.concat([encode({ type: 'PING', corr: 4 }), big, encode(after)])
  const check = (out: Decoded[], what: string): void => {
    assert.equal(out.length, 3, what)
    assert.ok(out[0]!.ok && out[0]!.frame.corr === 4, what)
    const tl = out[1]!
    assert.ok(!tl.ok && tl.reason === 'too-large' && tl.size === big.length, what)
    assert.ok(out[2]!.ok, what)
    assert.deepStrictEqual(out[2]!.frame, after, what)
  }
  check(new FrameReader(limit).push(stream), 'one chunk')
  for (let cut = 0; cut <= stream.length; cut++) {
    const r = new FrameReader(limit)
    check([...r.push(stream.subarray(0, cut)), ...r.push(stream.subarray(cut))], `cut at ${cut}`)
  }
  const r = new FrameReader(limit)
  const out: Decoded[] = []
  for (let i = 0; i < stream.length; i++) out.push(...r.push(stream.subarray(i, i + 1)))
  check(out, 'byte by byte')
  // Two oversize frames in a row, then a good one.
  check(new FrameReader(limit).push(Buffer.concat([encode({ type: 'PING', corr: 4 }), big, encode(after)])), 'again')
  const two = new FrameReader(limit).push(Buffer.concat([big, big, encode(after)]))
  assert.deepStrictEqual(
    two.map((d) => (d.ok ? d.frame.type : d.reason)),
    ['too-large', 'too-large', 'PING'],
  )
})

test('too large is decided from the length prefix alone, without waiting for the body', () => {
  const r = new FrameReader(1000)
  const out = r.push(Buffer.from('000f4240', 'hex')) // a 1,000,004-byte frame announced
  assert.equal(out.length, 1)
  assert.ok(!out[0]!.ok && out[0]!.reason === 'too-large' && out[0]!.size === 1_000_004)
  // the reader holds nothing while it skips
  assert.equal(r.pending, 0)
  assert.deepStrictEqual(r.push(Buffer.alloc(999_000)), [])
  assert.equal(r.pending, 0)
  const tail = r.push(Buffer.concat([Buffer.alloc(1000), encode({ type: 'PING', corr: 3 })]))
  assert.deepStrictEqual(frames(tail), [{ type: 'PING', corr: 3 }])
})

test('encode refuses values that do not fit a u53 (a programming error, not wire input)', () => {
  assert.throws(() => encode({ type: 'ACK', corr: 1, seq: 2 ** 53 }), RangeError)
  assert.throws(() => encode({ type: 'ACK', corr: 1, seq: -1 }), RangeError)
  assert.throws(() => encode({ type: 'ACK', corr: 1, seq: 1.5 }), RangeError)
})

// ---------------------------------------------------------------- properties

// Plain objects: the decoder builds ordinary objects, and deepStrictEqual compares prototypes.
const plain = { noNullPrototype: true } as const
/** Strings that survive UTF-8 (no lone surrogates), some of them multi-byte. */
const str = fc
  .oneof(fc.string({ maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 12 }), fc.constantFrom('', 'Zoë', '日本語', '🙂'))
  .filter((s) => Buffer.from(s, 'utf8').toString('utf8') === s)
const u53 = fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.constantFrom(0, 2 ** 32, 2 ** 53 - 1), fc.maxSafeNat())
const bytes = fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a))
const addr: fc.Arbitrary<Address> = fc.oneof(
  fc.record({ kind: fc.constant('user' as const), id: fc.nat({ max: 0xffffffff }) }, plain),
  fc.record({ kind: fc.constant('name' as const), name: str }, plain),
  fc.constant({ kind: 'all' as const }),
  fc.constant({ kind: 'server' as const }),
  fc.record({ kind: fc.constant('topic' as const), topic: str }, plain),
)
const u8 = fc.nat({ max: 0xff })
const u16 = fc.nat({ max: 0xffff })
const u32 = fc.nat({ max: 0xffffffff })
const msg = fc.record(
  {
    seq: u53,
    msgId: u53,
    from: u32,
    fromName: str,
    to: u32,
    topic: str,
    kind: u8,
    flags: u8,
    ts: u53,
    expiresAt: u53,
    fileId: str,
    body: bytes,
  },
  plain,
)
const user = fc.record({ id: u32, name: str, protocol: str, since: u53, lastSeen: u53 }, plain)
const item = fc.record({ name: str, count: u32 }, plain)
const byType: Record<FieldType, fc.Arbitrary<unknown>> = {
  u8,
  u16,
  u32,
  u53,
  str,
  bytes,
  addr,
  msg,
  msgs: fc.array(msg, { maxLength: 3 }),
  users: fc.array(user, { maxLength: 3 }),
  items: fc.array(item, { maxLength: 3 }),
}

/** A random frame of the named type, built from the FRAMES table so a new frame type is covered by itself. */
function frameArb(name: FrameName): fc.Arbitrary<Frame> {
  const shape: Record<string, fc.Arbitrary<unknown>> = { type: fc.constant(name), corr: u32 }
  for (const [field, t] of FRAMES[name].fields) shape[field] = byType[t]
  return fc.record(shape, plain) as unknown as fc.Arbitrary<Frame>
}
const anyFrame = fc.oneof(...(Object.keys(FRAMES) as FrameName[]).map(frameArb))

for (const name of Object.keys(FRAMES) as FrameName[]) {
  test(`property: decode(encode(f)) deep-equals f for random ${name} frames`, () => {
    fc.assert(
      fc.property(frameArb(name), (f) => {
        const bytes = encode(f)
        assert.equal(bytes.readUInt32BE(0), bytes.length - 4)
        const d = decode(bytes, Infinity)
        assert.ok(d.ok)
        assert.deepStrictEqual(d.frame, f)
        assert.equal(d.rest.length, 0)
      }),
      fuzz,
    )
  })
}

test('property: random frames back to back, cut into random chunks, come out whole and in order', () => {
  fc.assert(
    fc.property(
      fc.array(anyFrame, { minLength: 1, maxLength: 6 }),
      fc.array(fc.nat({ max: 60 }), { maxLength: 20 }),
      (fs, cuts) => {
        const stream = Buffer.concat(fs.map(encode))
        const r = new FrameReader(DEFAULT_MAX)
        const out: Decoded[] = []
        let off = 0
        for (const c of cuts) {
          out.push(...r.push(stream.subarray(off, off + c)))
          off = Math.min(stream.length, off + c)
        }
        out.push(...r.push(stream.subarray(off)))
        assert.deepStrictEqual(frames(out), fs)
      },
    ),
    fuzz,
  )
})

test('property: decode never throws on arbitrary bytes, and its answer is consistent', () => {
  const check = (buf: Buffer, max: number): void => {
    const d = decode(buf, max)
    if (d.ok) {
      assert.ok(FRAME_BY_CODE.has(buf[4]!))
      assert.equal(d.rest.length, buf.length - (buf.readUInt32BE(0) + 4))
      // anything decoded encodes back to the same bytes
      assert.ok(encode(d.frame).equals(buf.subarray(0, buf.length - d.rest.length)))
    } else if (d.reason === 'need-more') assert.ok(buf.length < 4 || buf.length < buf.readUInt32BE(0) + 4)
    else if (d.reason === 'too-large') assert.ok(d.size > max)
    else assert.ok(typeof d.detail === 'string')
  }
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 80 }), fc.integer({ min: HEADER_BYTES, max: 200 }), (a, max) => {
      check(Buffer.from(a), max)
      check(Buffer.from(a), DEFAULT_MAX)
    }),
    fuzz,
  )
})

test('property: decode never throws on valid frames with bytes flipped, cut or appended', () => {
  const vectorBytes = good.map(bytesOf)
  fc.assert(
    fc.property(
      fc.constantFrom(...vectorBytes),
      fc.array(fc.tuple(fc.nat(), u8), { maxLength: 4 }),
      fc.nat(),
      fc.uint8Array({ maxLength: 8 }),
      (base, flips, cutAt, extra) => {
        const b = Buffer.from(base)
        for (const [at, v] of flips) b[at % b.length] = v
        const mutated = Buffer.concat([b.subarray(0, b.length - (cutAt % 3)), Buffer.from(extra)])
        decode(mutated, DEFAULT_MAX)
        // the streaming reader must not throw either, in any split
        const r = new FrameReader(DEFAULT_MAX)
        r.push(mutated.subarray(0, cutAt % (mutated.length + 1)))
        r.push(mutated.subarray(cutAt % (mutated.length + 1)))
      },
    ),
    fuzz,
  )
})

test('property: the length prefix of a frame of N fields is exactly the sum of its field sizes', () => {
  // A cross-check of sizeOf against the writer: an encoder that over-allocates would leave stale bytes.
  fc.assert(
    fc.property(anyFrame, (f) => {
      const b = encode(f)
      const d = decode(Buffer.concat([b, Buffer.from([0xaa])]), Infinity)
      assert.ok(d.ok && d.rest.length === 1 && d.rest[0] === 0xaa)
    }),
    fuzz,
  )
})

// Found by npm run fuzz (fuzz/targets.ts, native): after a malformed frame the reader went on decoding the next
// chunk, so what came out depended on how the stream was split. It now stops for good.
test('FrameReader decodes nothing after a malformed frame, however the stream is split', () => {
  const bad = Buffer.from('000000053000000001', 'hex') // unknown frame type 0x30, corr 1
  const ping = Buffer.from('000000050700000002', 'hex')
  for (let cut = 0; cut <= bad.length + ping.length; cut++) {
    const all = Buffer.concat([bad, ping])
    const r = new FrameReader(DEFAULT_MAX)
    const out = [...r.push(all.subarray(0, cut)), ...r.push(all.subarray(cut)), ...r.push(ping)]
    assert.equal(out.length, 1, `cut at ${cut}: ${JSON.stringify(out)}`)
    assert.ok(!out[0]!.ok && out[0]!.reason === 'malformed' && out[0]!.corr === 1)
  }
})
