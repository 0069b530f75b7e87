// Seed 004 codec: golden vectors (parse / generate / mirror), split-anywhere incl. unframed file bytes,
// limits, notice texts, hhmm, properties.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import {
  decodeClient,
  decodeServer,
  encodeClient,
  encodeServer,
  encodePacket,
  takeRaw,
  hhmm,
  notice,
  DEFAULT_LIMITS,
  MAX_PAYLOAD_BYTES,
  WELCOME_TEXT,
  type ClientMessage,
  type Decoded,
  type Limits,
  type ServerMessage,
} from '../../../src/protocols/p004/codec.js'

interface Vector {
  name: string
  source: string
  direction: 'client-to-server' | 'server-to-client'
  hex: string
  rawHex?: string
  canonical?: boolean
  frame?: Record<string, unknown>
  error?: 'malformed' | 'too-large'
}
const vectors = JSON.parse(readFileSync(new URL('../../vectors/p004/vectors.json', import.meta.url), 'utf8')) as Vector[]
const fuzz = { seed: Number(process.env.FUZZ_SEED ?? 4004), numRuns: Number(process.env.FUZZ_RUNS ?? 300) }
const bytes = (v: Vector) => Buffer.from(v.hex, 'hex')
const decodeAs = (v: Vector, buf: Buffer, limits?: Limits): Decoded<ClientMessage | ServerMessage> =>
  v.direction === 'client-to-server' ? decodeClient(buf, limits) : decodeServer(buf, limits)

type Event = ClientMessage | ServerMessage | { raw: string } | { error: string }
/** The adapter's loop: packets, and after a 'file' packet exactly `size` unframed bytes. */
function feed(chunks: Buffer[], side: 'client' | 'server', limits: Limits = DEFAULT_LIMITS): Event[] {
  const out: Event[] = []
  let buf: Buffer = Buffer.alloc(0)
  let pending = 0
  let raw: Buffer[] = []
  for (const chunk of chunks) {
    buf = Buffer.concat([buf, chunk])
    for (;;) {
      if (pending > 0) {
        const t = takeRaw(buf, pending)
        raw.push(t.chunk)
        buf = t.rest
        pending = t.remaining
        if (pending > 0) break
        out.push({ raw: Buffer.concat(raw).toString('hex') })
        raw = []
        continue
      }
      const r = side === 'client' ? decodeClient(buf, limits) : decodeServer(buf, limits)
      if (r.ok) {
        out.push(r.frame)
        buf = r.rest
        if (r.frame.kind === 'file') pending = r.frame.size
        if (pending === 0 && r.frame.kind === 'file') out.push({ raw: '' })
        continue
      }
      if (r.reason === 'need-more') break
      out.push({ error: r.reason })
      return out
    }
  }
  return out
}
const withRaw = (v: Vector) => Buffer.concat([bytes(v), Buffer.from(v.rawHex ?? '', 'hex')])
const expected = (vs: Vector[]): Event[] =>
  vs.flatMap((v) => (v.rawHex === undefined ? [v.frame as Event] : [v.frame as Event, { raw: v.rawHex }]))

for (const v of vectors) {
  if (v.frame !== undefined) {
    test(`004 parse: ${v.name}`, () => {
      const r = decodeAs(v, bytes(v))
      assert.ok(r.ok, JSON.stringify(r))
      assert.deepEqual(r.frame, v.frame)
      assert.equal(r.rest.length, 0)
    })
    test(`004 generate: ${v.name}`, () => {
      const out =
        v.direction === 'client-to-server' ? encodeClient(v.frame as ClientMessage) : encodeServer(v.frame as ServerMessage)
      if (v.canonical) assert.equal(out.toString('hex'), v.hex)
      else {
        assert.notEqual(out.toString('hex'), v.hex)
        const again = decodeAs(v, out)
        assert.ok(again.ok)
        assert.deepEqual(again.frame, v.frame)
      }
    })
  } else {
    test(`004 reject: ${v.name}`, () => {
      const r = decodeAs(v, bytes(v))
      assert.ok(!r.ok)
      assert.equal(r.reason, v.error)
      assert.match(r.detail, /\S/)
    })
  }
}

for (const side of ['client', 'server'] as const) {
  test(`004 split-anywhere: ${side} stream with unframed file bytes, every cut and byte by byte`, () => {
    const vs = vectors.filter((v) => v.frame && v.direction === `${side === 'client' ? 'client-to-server' : 'server-to-client'}`)
    const stream = Buffer.concat(vs.map(withRaw))
    const whole = feed([stream], side)
    assert.deepEqual(whole, expected(vs))
    for (let cut = 0; cut <= stream.length; cut++) {
      assert.deepEqual(feed([stream.subarray(0, cut), stream.subarray(cut)], side), whole, `cut at ${cut}`)
    }
    assert.deepEqual(
      feed(
        [...stream].map((b) => Buffer.of(b)),
        side,
      ),
      whole,
    )
  })
}

test('004 file bytes that look like a packet are still file bytes', () => {
  const fake = encodeClient({ kind: 'message', text: 'not a packet' })
  const stream = Buffer.concat([
    encodeClient({ kind: 'file', size: fake.length, filename: 'f', caption: '' }),
    fake,
    encodeClient({ kind: 'exit' }),
  ])
  assert.deepEqual(feed([stream], 'client'), [
    { kind: 'file', size: fake.length, filename: 'f', caption: '' },
    { raw: fake.toString('hex') },
    { kind: 'exit' },
  ])
})

test('004 takeRaw: never takes more than owed, never copies', () => {
  const buf = Buffer.from('abcdef')
  const t = takeRaw(buf, 4)
  assert.equal(t.chunk.toString(), 'abcd')
  assert.equal(t.rest.toString(), 'ef')
  assert.equal(t.remaining, 0)
  assert.equal(t.chunk.buffer, buf.buffer)
  const u = takeRaw(buf, 10)
  assert.equal(u.chunk.length, 6)
  assert.equal(u.remaining, 4)
  assert.equal(takeRaw(Buffer.alloc(0), 3).remaining, 3)
})

test('004 limits: len is judged from the 2 length bytes, the file size from the header', () => {
  assert.deepEqual(decodeClient(Buffer.of(0)), { ok: false, reason: 'need-more' })
  const r = decodeClient(Buffer.from('0101', 'hex'), { ...DEFAULT_LIMITS, maxLen: 256 })
  assert.ok(!r.ok && r.reason === 'too-large' && r.code === 'SB_ERR_TOO_LARGE')
  assert.deepEqual(decodeClient(Buffer.from('0100', 'hex'), { ...DEFAULT_LIMITS, maxLen: 256 }), {
    ok: false,
    reason: 'need-more',
  })
  const file = encodeClient({ kind: 'file', size: 1000, filename: 'x', caption: '' })
  const f = decodeClient(file, { ...DEFAULT_LIMITS, maxFileBytes: 999 })
  assert.ok(!f.ok && f.reason === 'too-large')
  assert.equal(decodeClient(file, { ...DEFAULT_LIMITS, maxFileBytes: 1000 }).ok, true)
  const empty = decodeClient(encodePacket(2, Buffer.from('00000005', 'hex')))
  assert.ok(!empty.ok && empty.reason === 'malformed' && /file name/.test(empty.detail))
  assert.equal(encodePacket(3, 'x'.repeat(MAX_PAYLOAD_BYTES)).readUInt16BE(0), 0xffff)
  assert.throws(() => encodePacket(3, 'x'.repeat(MAX_PAYLOAD_BYTES + 1)), RangeError)
  assert.throws(() => encodeClient({ kind: 'file', size: 2 ** 32, filename: 'x', caption: '' }), RangeError)
})

test('004 login: name alone, name + offset, junk after the name, empty', () => {
  const login = (s: string) => decodeClient(encodePacket(0, s))
  assert.deepEqual(login('bob   3600  extra'), {
    ok: true,
    frame: { kind: 'login', name: 'bob', utcOffsetSeconds: 3600 },
    rest: Buffer.alloc(0),
  })
  const junk = login('bob abc')
  assert.ok(junk.ok && junk.frame.kind === 'login' && junk.frame.utcOffsetSeconds === null)
  const wild = login('bob 90000') // more than a day: not an offset
  assert.ok(wild.ok && wild.frame.kind === 'login' && wild.frame.utcOffsetSeconds === null)
  for (const s of ['', '   ', ' \n']) {
    const r = login(s)
    assert.ok(!r.ok && r.reason === 'malformed', JSON.stringify(s))
  }
})

test('004 rename: first word only, command word optional, name required', () => {
  const rename = (s: string) => decodeClient(encodePacket(4, s))
  assert.deepEqual(rename('>>chname<< robert extra words'), {
    ok: true,
    frame: { kind: 'rename', name: 'robert' },
    rest: Buffer.alloc(0),
  })
  const bare = rename('robert')
  assert.ok(bare.ok && bare.frame.kind === 'rename' && bare.frame.name === 'robert')
  for (const s of ['>>chname<<', '>>chname<<   ', '']) {
    const r = rename(s)
    assert.ok(!r.ok && r.reason === 'malformed', JSON.stringify(s))
  }
})

test('004 exit and unknown types keep the framing intact', () => {
  const exit = decodeClient(encodePacket(1, 'whatever'))
  assert.ok(exit.ok && exit.frame.kind === 'exit')
  const stream = Buffer.concat([encodePacket(9, 'zz'), encodeClient({ kind: 'message', text: 'after' })])
  assert.deepEqual(feed([stream], 'client'), [
    { kind: 'unknown', type: 9, payload: Buffer.from('zz') },
    { kind: 'message', text: 'after' },
  ])
})

test('004 UTF-8: names (login, rename) must be valid, other text is replaced', () => {
  const bad = Buffer.of(0x62, 0xff, 0x62)
  for (const type of [0, 4]) {
    const r = decodeClient(encodePacket(type, bad))
    assert.ok(!r.ok && r.reason === 'malformed', `type ${type}`)
  }
  const m = decodeClient(encodePacket(3, bad))
  assert.ok(m.ok && m.frame.kind === 'message' && m.frame.text === 'b\ufffdb')
  const f = decodeClient(encodePacket(2, Buffer.concat([Buffer.from('00000001', 'hex'), bad])))
  assert.ok(f.ok && f.frame.kind === 'file' && f.frame.filename === 'b\ufffdb')
})

test('004 server file packet: separator required, original client finds 0xFF after the <HH:MM> prefix', () => {
  const noSep = decodeServer(encodePacket(2, 'no separator'))
  assert.ok(!noSep.ok && noSep.reason === 'malformed')
  const short = decodeServer(encodePacket(2, Buffer.from('61ff0000', 'hex')))
  assert.ok(!short.ok && short.reason === 'malformed')
  const out = encodeServer({
    kind: 'file',
    header: notice.fileHeader('03:12', 'alice'),
    size: 20,
    filename: 'hello.txt',
    caption: 'a caption',
  })
  // The original client scans from byte 11 of the packet (2 len + 1 type + 8 for "<HH:MM> ").
  assert.ok(out.indexOf(0xff) >= 11)
  assert.equal(out.toString('hex'), vectors.find((v) => v.name.startsWith('file announcement'))!.hex)
})

test('004 hhmm: recipient local time from the UTC offset, wraps around midnight', () => {
  const t = Date.UTC(2026, 0, 1, 0, 12, 59, 999)
  assert.equal(hhmm(t, null), '00:12')
  assert.equal(hhmm(t, 0), '00:12')
  assert.equal(hhmm(t, 3 * 3600), '03:12')
  assert.equal(hhmm(t, -3600), '23:12')
  assert.equal(hhmm(t, 5.5 * 3600), '05:42')
  assert.equal(hhmm(Date.UTC(2026, 0, 1, 23, 59), 60), '00:00')
  assert.equal(hhmm(-60_000, 0), '23:59')
  assert.equal(hhmm(Number.NaN, 0), '00:00')
})

test('004 notice texts: exactly what the original server sends', () => {
  const packets = vectors.filter((v) => v.direction === 'server-to-client').map((v) => (v.frame as { text?: string }).text)
  const built = [
    notice.connected('03:12', 'bob'),
    notice.chat('03:12', 'alice', 'hello everyone'),
    notice.renamed('03:12', 'bob', 'robert'),
    notice.uploaded('03:12', 'alice', 'hello.txt'),
    notice.disconnected('03:12', 'robert'),
    notice.usernameChanged('robert'),
    notice.nameInUse(),
    WELCOME_TEXT,
  ]
  for (const text of built) assert.ok(packets.includes(text), text)
  assert.equal(encodeServer({ kind: 'welcome', text: WELCOME_TEXT }).readUInt16BE(0), 0x3f)
})

const word = fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }).filter((s) => !/\s/.test(s))
const text = fc.string({ unit: 'binary', maxLength: 200 })
const clientArb: fc.Arbitrary<ClientMessage> = fc
  .oneof(
    fc.record({
      kind: fc.constant('login' as const),
      name: word,
      utcOffsetSeconds: fc.option(fc.integer({ min: -86_399, max: 86_399 })),
    }),
    fc.constant({ kind: 'exit' as const }),
    fc.record({
      kind: fc.constant('file' as const),
      size: fc.nat({ max: DEFAULT_LIMITS.maxFileBytes }),
      filename: word,
      caption: text,
    }),
    fc.record({ kind: fc.constant('message' as const), text }),
    fc.record({ kind: fc.constant('rename' as const), name: word }),
  )
  .map((m) => ({ ...m }))
const serverArb: fc.Arbitrary<ServerMessage> = fc
  .oneof(
    fc.record({ kind: fc.constant('welcome' as const), text }),
    fc.record({
      kind: fc.constant('file' as const),
      header: text,
      size: fc.nat({ max: DEFAULT_LIMITS.maxFileBytes }),
      filename: word,
      caption: text,
    }),
    fc.record({ kind: fc.constant('notice' as const), text }),
    fc.record({ kind: fc.constant('renamed' as const), text }),
  )
  .map((m) => ({ ...m }))

test(`004 property: decode(encode(m)) equals m, both directions (seed ${fuzz.seed})`, () => {
  fc.assert(
    fc.property(clientArb, (m) => {
      const r = decodeClient(encodeClient(m))
      assert.ok(r.ok)
      assert.deepEqual(r.frame, m)
    }),
    fuzz,
  )
  fc.assert(
    fc.property(serverArb, (m) => {
      const r = decodeServer(encodeServer(m))
      assert.ok(r.ok)
      assert.deepEqual(r.frame, m)
    }),
    fuzz,
  )
})

test(`004 property: a client stream with file bytes split at random points decodes the same (seed ${fuzz.seed})`, () => {
  const item = fc.oneof(
    clientArb.filter((m) => m.kind !== 'file'),
    fc.tuple(word, text, fc.uint8Array({ maxLength: 40 })).map(([filename, caption, data]) => ({ filename, caption, data })),
  )
  fc.assert(
    fc.property(fc.array(item, { minLength: 1, maxLength: 5 }), fc.array(fc.nat(), { maxLength: 8 }), (items, cuts) => {
      const parts: Buffer[] = []
      const want: Event[] = []
      for (const it of items) {
        if ('data' in it) {
          const header: ClientMessage = { kind: 'file', size: it.data.length, filename: it.filename, caption: it.caption }
          parts.push(encodeClient(header), Buffer.from(it.data))
          want.push(header, { raw: Buffer.from(it.data).toString('hex') })
        } else {
          parts.push(encodeClient(it))
          want.push(it)
        }
      }
      const stream = Buffer.concat(parts)
      const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b)
      const chunks = [0, ...points].map((p, i, all) => stream.subarray(p, all[i + 1] ?? stream.length))
      assert.deepEqual(feed(chunks, 'client'), want)
    }),
    fuzz,
  )
})

test(`004 property: decoders never throw on arbitrary bytes and respect len (seed ${fuzz.seed})`, () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 0, max: 0xffff }), (arr, maxLen) => {
      const buf = Buffer.from(arr)
      const limits = { maxLen, maxFileBytes: 1000 }
      for (const r of [decodeClient(buf, limits), decodeServer(buf, limits)]) {
        if (!r.ok) continue
        const len = buf.readUInt16BE(0)
        assert.ok(len >= 1 && len <= maxLen)
        assert.equal(r.rest.length, buf.length - 2 - len)
      }
    }),
    fuzz,
  )
})

// Found by npm run fuzz (fuzz/targets.ts, p004): "name -0" gave the offset -0, which does not survive encode → decode.
test('004 login: an offset of -0 is 0', () => {
  const d = decodeClient(Buffer.from('000d00724d4c5e516b38326e202d30', 'hex'))
  assert.ok(d.ok && d.frame.kind === 'login')
  assert.ok(Object.is(d.frame.utcOffsetSeconds, 0), String(d.frame.utcOffsetSeconds))
  assert.deepEqual(decodeClient(encodeClient(d.frame)), { ...d, rest: Buffer.alloc(0) })
})
