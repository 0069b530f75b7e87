/**
 * What `npm run fuzz` drives, one target per codec. A target decodes one input the way the listener would
 * and returns its outcome class (the signature that steers the corpus); it throws when the codec throws or
 * when an invariant breaks (a decoded frame that does not encode back to the same frame, a streaming reader
 * that disagrees with the one-shot decoder, a decoder that makes no progress).
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import fc from 'fast-check'
import * as native from '../src/protocols/native/codec.js'
import { FRAMES, type FieldType, type Frame, type FrameName } from '../src/protocols/native/frames.js'
import * as p001 from '../src/protocols/p001/codec.js'
import * as p002 from '../src/protocols/p002/codec.js'
import * as p003 from '../src/protocols/p003/codec.js'
import * as p004 from '../src/protocols/p004/codec.js'
import { decodeBus, encodeBus } from '../src/bus/redis/bus-codec.js'
import { routes } from '../src/protocols/http/routes-spec.js'
import { body as bodyBytes, fastifySchema } from '../src/protocols/http/rest.js'
import { parseAddress, parseUser } from '../src/protocols/http/json.js'
import { shape } from './mutate.js'
import { assertSame } from './equal.js'

export interface Target {
  name: string
  /** Longest input the mutator makes. */
  maxLen: number
  /** Tokens the mutator inserts. */
  dict: string[]
  seeds(): Buffer[]
  /** `n` structured inputs from fast-check (valid frames, encoded), for the given seed. */
  generate(seed: number, n: number): Buffer[]
  /** Decode one input; returns its outcome class; throws on a crash or a broken invariant. */
  run(input: Buffer): string
}

const vectors = (p: string): { hex: string; rawHex?: string; direction?: string; role?: string }[] =>
  JSON.parse(readFileSync(new URL(`../test/vectors/${p}`, import.meta.url), 'utf8')) as never
const hexes = (p: string): Buffer[] =>
  vectors(p).flatMap((v) => [Buffer.from(v.hex, 'hex'), ...(v.rawHex ? [Buffer.from(v.hex + v.rawHex, 'hex')] : [])])
const sample = <T>(arb: fc.Arbitrary<T>, seed: number, n: number): T[] => fc.sample(arb, { seed, numRuns: n })

// ---------------------------------------------------------------- native

/** Built on first use: `fc.string({ unit: 'binary' })` maps all of Unicode when it is made (about a second),
 * which every worker paid at load, whatever its target. */
let nativeFrames: fc.Arbitrary<Frame> | undefined
function nativeFrame(): fc.Arbitrary<Frame> {
  nativeFrames ??= makeNativeFrame()
  return nativeFrames
}

function makeNativeFrame(): fc.Arbitrary<Frame> {
  const str = fc.string({ unit: 'binary', maxLength: 12 })
  const u53 = fc.oneof(fc.constantFrom(0, 1, Number.MAX_SAFE_INTEGER), fc.maxSafeNat())
  const bytes = fc.uint8Array({ maxLength: 24 }).map((a) => Buffer.from(a))
  const addr = fc.oneof(
    fc.record({ kind: fc.constant('user' as const), id: fc.nat({ max: 0xffffffff }) }),
    fc.record({ kind: fc.constant('name' as const), name: str }),
    fc.constant({ kind: 'all' as const }),
    fc.constant({ kind: 'server' as const }),
    fc.record({ kind: fc.constant('topic' as const), topic: str }),
  )
  const msg = fc.record({
    seq: u53,
    msgId: u53,
    from: fc.nat({ max: 0xffffffff }),
    fromName: str,
    to: fc.nat({ max: 0xffffffff }),
    topic: str,
    kind: fc.nat({ max: 255 }),
    flags: fc.nat({ max: 255 }),
    ts: u53,
    expiresAt: u53,
    fileId: str,
    body: bytes,
  })
  const user = fc.record({ id: fc.nat({ max: 0xffffffff }), name: str, protocol: str, since: u53, lastSeen: u53 })
  const fieldArb: Record<FieldType, fc.Arbitrary<unknown>> = {
    u8: fc.nat({ max: 0xff }),
    u16: fc.nat({ max: 0xffff }),
    u32: fc.nat({ max: 0xffffffff }),
    u53,
    str,
    bytes,
    addr,
    msg,
    msgs: fc.array(msg, { maxLength: 3 }),
    users: fc.array(user, { maxLength: 3 }),
    items: fc.array(fc.record({ name: str, count: fc.nat({ max: 0xffffffff }) }), { maxLength: 3 }),
  }
  return fc.oneof(
    ...(Object.keys(FRAMES) as FrameName[]).map((type) =>
      fc.record({
        type: fc.constant(type),
        corr: fc.nat({ max: 0xffffffff }),
        ...Object.fromEntries(FRAMES[type].fields.map(([f, t]) => [f, fieldArb[t]])),
      }),
    ),
  ) as unknown as fc.Arbitrary<Frame>
}

const NATIVE_MAX = [64, 4096, 1024 * 1024]

const nativeTarget: Target = {
  name: 'native',
  maxLen: 4096,
  dict: ['\x00\x00\x00\x09', '\x00\x00\x00\x00', '\xff\xff\xff\xff', '\x00\x01', 'alice', '\xc3\xa9', '\xed\xa0\x80'],
  seeds: () => [
    ...vectors('native/frames.json').map((v) => Buffer.from(v.hex, 'hex')),
    ...vectors('native/invalid.json').map((v) => Buffer.from(v.hex, 'hex')),
  ],
  generate: (seed, n) =>
    sample(fc.array(nativeFrame(), { minLength: 1, maxLength: 3 }), seed, n).map((fs) => Buffer.concat(fs.map(native.encode))),
  run(input) {
    const max = NATIVE_MAX[input.length % 3]!
    const d = native.decode(input, max)
    if (d.ok) {
      // Canonical: what decodes encodes back to the very same bytes.
      const size = input.length - d.rest.length
      assert.ok(native.encode(d.frame).equals(input.subarray(0, size)), 'decode → encode changed the bytes')
    }
    // Streaming: the reader fed in two pieces gives what it gives fed at once.
    const whole = new native.FrameReader(max).push(input).map(withoutRest)
    const cut = input.length >> 1
    const split = new native.FrameReader(max)
    const parts = [...split.push(input.subarray(0, cut)), ...split.push(input.subarray(cut))].map(withoutRest)
    assertSame(parts, whole, 'FrameReader split differs from whole')
    return d.ok ? `ok:${d.frame.type}` : d.reason === 'malformed' ? `bad:${shape(d.detail)}` : d.reason
  },
}

/** What must not depend on how the stream was split: a too-large frame's corr and type are read only when its
 * header is already there (docs/protocol/native.md), so only its size counts. */
function withoutRest(d: native.Decoded): unknown {
  if (d.ok) return d.frame
  return d.reason === 'too-large' ? { reason: d.reason, size: d.size } : d
}

// ---------------------------------------------------------------- 001

const name8 = fc.string({ maxLength: 7 }).filter((s) => Buffer.byteLength(s) <= 8 && !s.includes('\0'))
const p001Target: Target = {
  name: 'p001',
  maxLen: 2100,
  dict: ['\x00', '200\x00', '300\x00', 'alice\x00', '\x18\x00', '\x00\x04'],
  seeds: () => hexes('p001/vectors.json'),
  generate: (seed, n) =>
    sample(
      fc.array(
        fc.record({
          type: fc.nat({ max: 3 }),
          messageId: fc.nat({ max: 0xffffffff }),
          src: name8,
          dst: name8,
          text: fc.string({ maxLength: 40 }),
        }),
        { minLength: 1, maxLength: 3 },
      ),
      seed,
      n,
    ).map((fs) => Buffer.concat(fs.map(p001.encode))),
  run(input) {
    const limits = { maxFrameBytes: input.length % 2 === 0 ? p001.MAX_FRAME_BYTES : 0xffff }
    let buf = input
    let sig = ''
    for (let i = 0; i < 4; i++) {
      const d = p001.decode(buf, limits)
      if (!d.ok) return `${sig}${d.reason === 'need-more' ? 'more' : shape(d.detail)}`
      assert.ok(d.rest.length < buf.length, 'decode made no progress')
      buf = d.rest
      sig += `t${Math.min(d.frame.type, 3)}|`
      if (Buffer.byteLength(d.frame.text) <= p001.MAX_TEXT_BYTES) {
        const again = p001.decode(p001.encode(d.frame))
        assert.ok(again.ok, 'encode → decode failed')
        assertSame(again.frame, d.frame, 'decode → encode → decode changed the frame')
      }
    }
    return sig
  },
}

// ---------------------------------------------------------------- 002

const p002Target: Target = {
  name: 'p002',
  maxLen: 4096,
  dict: ['\x00\x00\x00\x00', '\x00\x00\x00\x05', '\xff\xff\xff\xff', '\x00\x00\x0b\xb8', '\xed\xa0\x80'],
  seeds: () => hexes('p002/vectors.json'),
  generate: (seed, n) =>
    sample(
      fc.tuple(fc.string({ maxLength: 25 }), fc.array(fc.string({ maxLength: 60 }), { maxLength: 4 }), fc.maxSafeNat()),
      seed,
      n,
    ).map(([name, texts, ts]) =>
      texts.length > 0 && ts % 2 === 0
        ? encodeDeliveries(ts, name, texts)
        : Buffer.concat([p002.encodeString(name), ...texts.map(p002.encodeString)]),
    ),
  run(input) {
    const limits = input.length % 2 === 0 ? p002.DEFAULT_LIMITS : { maxUsernameBytes: 8, maxMessageBytes: 64 }
    // The gateway's order: one name, then messages.
    let sig = ''
    let d: p002.Decoded<string> = p002.decodeName(input, limits)
    let buf = input
    for (let i = 0; i < 4 && d.ok; i++) {
      assert.ok(d.rest.length < buf.length, 'decode made no progress')
      assert.equal(p002.decodeMessage(p002.encodeString(d.frame)).ok, true)
      buf = d.rest
      sig += 's|'
      d = p002.decodeMessage(buf, limits)
    }
    if (!d.ok) sig += d.reason === 'need-more' ? 'more' : shape(d.detail)
    const del = p002.decodeDelivery(input, limits)
    // (lenient UTF-8 may grow a text: U+FFFD is 3 bytes, so the round trip is judged without the size limits)
    const big = { maxUsernameBytes: 1 << 30, maxMessageBytes: 1 << 30 }
    if (del.ok) assertSame(p002.decodeDelivery(p002.encodeDelivery(del.frame), big), { ...del, rest: Buffer.alloc(0) })
    return `${sig}/${del.ok ? 'delivery' : del.reason === 'need-more' ? 'more' : shape(del.detail)}`
  },
}

function encodeDeliveries(ts: number, name: string, texts: string[]): Buffer {
  return Buffer.concat(texts.map((text) => p002.encodeDelivery({ timestamp: ts, name, text })))
}

// ---------------------------------------------------------------- 003

const token = fc.stringMatching(/^[^\s@]{1,12}$/)
const p003Target: Target = {
  name: 'p003',
  maxLen: 2048,
  dict: ['reg ', ';; ', ' De: ', '# ', '\n', '\r\n', '@', ' pedido_conversa ', 'tcp://localhost:5561', '\t', '\xed\xa0\x80'],
  seeds: () => hexes('p003/vectors.json'),
  generate: (seed, n) =>
    sample(
      fc.oneof(
        token.map((name) => p003.encodeRequest({ kind: 'register', name })),
        fc
          .tuple(token, token, fc.string({ maxLength: 40 }))
          .map(([target, from, text]) => p003.encodeRequest({ kind: 'mail', target, from, text })),
        fc
          .tuple(token, token, token)
          .map(([from, target, address]) => p003.encodeRequest({ kind: 'conversation', from, target, address })),
        fc.tuple(token, token, fc.string({ maxLength: 40 })).map(([t, f, x]) => p003.mailPublication(t, f, x)),
      ),
      seed,
      n,
    ).map((s) => Buffer.from(s)),
  run(input) {
    const req = p003.parseRequest(input)
    if (req.kind !== 'unknown') assertSame(p003.parseRequest(p003.encodeRequest(req)), req, 'request mirror')
    const pub = p003.parsePublication(input)
    if (pub.kind === 'mail') assertSame(p003.parsePublication(p003.mailPublication(pub.target, pub.from, pub.text)), pub)
    const reply = p003.parseRegisterReply(input)
    if (reply !== null) assertSame(p003.parseRegisterReply(p003.registerReply(...reply)), reply)
    if (req.kind === 'register') p003.isValidName(req.name)
    return `${req.kind}/${pub.kind}/${reply === null ? 0 : 1}`
  },
}

// ---------------------------------------------------------------- 004

const p004Client = fc.oneof(
  fc.record({
    kind: fc.constant('login' as const),
    name: fc.stringMatching(/^\S{1,12}$/),
    utcOffsetSeconds: fc.option(fc.integer({ min: -86_399, max: 86_399 })),
  }),
  fc.constant({ kind: 'exit' as const }),
  fc.record({ kind: fc.constant('message' as const), text: fc.string({ maxLength: 40 }) }),
  fc.record({ kind: fc.constant('rename' as const), name: fc.stringMatching(/^\S{1,12}$/) }),
)
const p004Target: Target = {
  name: 'p004',
  maxLen: 4096,
  dict: ['>>chname<< ', '>>exit<<', '\xff', '\x00\x00\x00\x05', ' 10800', ' -3600', '\x00\x01', '\xff\xff'],
  seeds: () => hexes('p004/vectors.json'),
  generate: (seed, n) =>
    sample(
      fc.tuple(
        fc.array(p004Client, { minLength: 1, maxLength: 3 }),
        fc.option(fc.tuple(fc.stringMatching(/^\S{1,12}$/), fc.uint8Array({ maxLength: 20 }))),
      ),
      seed,
      n,
    ).map(([ms, file]) =>
      Buffer.concat([
        ...ms.map(p004.encodeClient),
        ...(file
          ? [p004.encodeClient({ kind: 'file', size: file[1].length, filename: file[0], caption: '' }), Buffer.from(file[1])]
          : []),
      ]),
    ),
  run(input) {
    const limits = input.length % 2 === 0 ? p004.DEFAULT_LIMITS : { maxLen: 300, maxFileBytes: 64 }
    // The gateway's loop: packets, and after a file header its raw bytes.
    let buf = input
    let pending = 0
    let sig = ''
    for (let i = 0; i < 6; i++) {
      if (pending > 0) {
        const t = p004.takeRaw(buf, pending)
        buf = t.rest
        pending = t.remaining
        if (pending > 0) break
        sig += 'raw|'
        continue
      }
      const d = p004.decodeClient(buf, limits)
      if (!d.ok) {
        sig += d.reason === 'need-more' ? 'more' : shape(d.detail)
        break
      }
      assert.ok(d.rest.length < buf.length, 'decode made no progress')
      buf = d.rest
      sig += `${d.frame.kind}|`
      if (d.frame.kind === 'file') pending = d.frame.size
      // What the gateway acts on is never empty and is one word: a login or rename names someone, a file has a name.
      if (d.frame.kind === 'login' || d.frame.kind === 'rename')
        assert.ok(d.frame.name !== '' && !/\s/.test(d.frame.name), `${d.frame.kind} to ${JSON.stringify(d.frame.name)}`)
      if (d.frame.kind === 'file') assert.ok(d.frame.filename !== '', 'file without a name')
      if (d.frame.kind !== 'unknown' && d.frame.kind !== 'file') {
        const again = p004.decodeClient(p004.encodeClient(d.frame))
        assert.ok(again.ok, 'encode → decode failed')
        if (d.frame.kind === 'login' || d.frame.kind === 'rename') assertSame(again.frame, d.frame, 'client mirror')
      }
    }
    const s = p004.decodeServer(input, limits)
    return `${sig}/${s.ok ? s.frame.kind : s.reason === 'need-more' ? 'more' : shape(s.detail)}`
  },
}

// ---------------------------------------------------------------- Redis bus

const carried = { seq: 1, msgId: 2, from: 3, fromName: 'a', to: 5, kind: 'text', flags: 0, ts: 9, body: Buffer.from('hi') }
const busSeeds = [
  { type: 'wake', user: 12 },
  { type: 'wake', user: 5, msgs: [carried, { ...carried, seq: 2 }] },
  {
    type: 'batch',
    msgs: [
      { type: 'wake', user: 5, msgs: [carried] },
      { type: 'wake', user: 6 },
    ],
  },
  { type: 'where', user: 12, device: 3, node: 'n1', online: true },
  { type: 'reaped', node: 'n2' },
  { type: 'kick', user: 12, reason: 'replaced', node: 'n1', since: 1700000000000 },
  {
    type: 'event',
    to: 5,
    ev: {
      type: 'message',
      msg: { seq: 1, msgId: 2, from: 3, fromName: 'a', to: 5, kind: 'text', flags: 0, ts: 9, body: Buffer.from('hi') },
    },
  },
  { type: 'broadcast', ev: { type: 'presence', user: { id: 1, name: 'a' }, online: false, at: 9 }, except: 1 },
  {
    type: 'event',
    to: 2,
    ev: { type: 'notice', code: 'x', text: 't', data: { $b64: 'AAAA', $esc: { $b64: 'QQ==' }, n: [1, { $b64: 'x' }] } },
  },
  {
    type: 'event',
    to: 2,
    ev: { type: 'conversation', ev: { event: 'message', convId: 'c1', peer: { id: 1, name: 'a' }, body: Buffer.from('☺') } },
  },
]
const busTarget: Target = {
  name: 'bus',
  maxLen: 2048,
  dict: ['"$b64"', '"$esc"', '"__proto__"', '"constructor"', '{', '}', '[', ']', ',', ':', 'null', '-0', '1e400', '"\\ud800"'],
  seeds: () => busSeeds.map((m) => Buffer.from(encodeBus('n1', m as never))),
  generate: (seed, n) =>
    sample(fc.tuple(fc.constantFrom(...busSeeds), fc.jsonValue({ maxDepth: 3 }), fc.string({ maxLength: 8 })), seed, n).map(
      ([m, extra, key]) => Buffer.from(encodeBus(key, { ...m, [key || 'x']: extra } as never)),
    ),
  run(input) {
    const d = decodeBus(input)
    if (d.ok) {
      // One round trip normalises (-0, dropped undefined); after it, encoding is stable.
      const once = encodeBus(d.node, d.msg)
      const again = decodeBus(once)
      assert.ok(again.ok, 'encode → decode failed')
      assert.equal(encodeBus(again.node, again.msg), once, 'bus round trip is not stable')
      assert.equal(Object.getPrototypeOf(d.msg), Object.prototype, 'prototype changed')
    }
    return d.ok ? `ok:${d.msg.type}` : shape(d.reason)
  },
}

// ---------------------------------------------------------------- HTTP JSON bodies

// fastify's own pipeline: secure-json-parse (as its JSON content-type parser) and its ajv compiler, with the
// options src/protocols/http/index.ts gives it; then what the handlers do with a valid body.
const require = createRequire(import.meta.url)
const sjson = require('secure-json-parse') as { parse(t: string, r: null, o: object): unknown }
const AjvCompiler = require('@fastify/ajv-compiler') as () => (
  ext: object,
  o: object,
) => (s: { schema: object; method: string; url: string; httpPart: string }) => ((b: unknown) => boolean) & { errors?: unknown }
const compile = AjvCompiler()({}, { customOptions: { removeAdditional: false, allowUnionTypes: true, coerceTypes: false } })
const hasDefault = (s: unknown): boolean =>
  typeof s === 'object' && s !== null && (Object.hasOwn(s, 'default') || Object.values(s).some(hasDefault))
const bodyRoutes = routes
  .filter((r) => r.body !== undefined)
  .map((r) => {
    const schema = fastifySchema(r).body!
    // With removeAdditional and coerceTypes off, ajv changes a body only to fill in defaults (useDefaults): a
    // route whose schema has none can validate the parsed value itself, without a copy.
    return { r, validate: compile({ schema, method: r.method, url: r.url, httpPart: 'body' }), mutates: hasDefault(schema) }
  })

const httpSeeds = [
  '{"name":"alice"}',
  '{"token":"abc.def","id":2}',
  '{"token":"abc.def","name":"bob"}',
  '{"to":"bob","text":"hi"}',
  '{"to":2,"base64":"AAEC","receipt":true}',
  '{"to":"#news","text":"x","ttlMs":1000,"msgId":7}',
  '{"to":"ALL","text":"x"}',
  '{"seq":1}',
  '{"seqs":[1,2,3]}',
  '{"watch":true}',
  '{"user":"bob"}',
  '{"user":3}',
  '{"to":"bob"}',
  '{"text":"hello"}',
]
const httpTarget: Target = {
  name: 'http-json',
  maxLen: 1024,
  dict: [
    '"to"',
    '"text"',
    '"base64"',
    '"__proto__"',
    '"constructor":{"prototype":{}}',
    '"seq"',
    '"#',
    '1e308',
    '-1',
    'true',
    'null',
    '[]',
    '{}',
    '\\u0000',
  ],
  seeds: () => httpSeeds.map((s) => Buffer.from(s)),
  generate: (seed, n) =>
    sample(
      fc.oneof(
        fc.record(
          {
            to: fc.oneof(fc.string({ maxLength: 10 }), fc.integer()),
            text: fc.string({ maxLength: 20 }),
            base64: fc.base64String({ maxLength: 16 }),
            msgId: fc.integer(),
            seq: fc.integer(),
            name: fc.string({ maxLength: 10 }),
            user: fc.oneof(fc.string({ maxLength: 10 }), fc.integer()),
          },
          { requiredKeys: [] },
        ),
        fc.jsonValue({ maxDepth: 2 }),
      ),
      seed,
      n,
    ).map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
  run(input) {
    let value: unknown
    try {
      value = sjson.parse(input.toString('utf8'), null, { protoAction: 'error', constructorAction: 'error' })
    } catch (err) {
      if (err instanceof SyntaxError) return 'not-json'
      return `refused:${shape((err as Error).message)}`
    }
    let sig = 'json'
    for (const { r, validate, mutates } of bodyRoutes) {
      // ajv may mutate (defaults): such a route gets its own copy, as each request has its own body
      const b = (mutates ? structuredClone(value) : value) as Record<string, unknown>
      if (!validate(b)) continue
      sig += `|${r.operationId}`
      if ('to' in b) parseAddress(b.to as number | string)
      if ('user' in b) parseUser(b.user as number | string)
      if ('text' in b || 'base64' in b) bodyBytes(b as { text?: string; base64?: string })
    }
    return sig
  },
}

export const targets: Target[] = [nativeTarget, p001Target, p002Target, p003Target, p004Target, busTarget, httpTarget]

export function target(name: string): Target {
  const t = targets.find((x) => x.name === name)
  if (t === undefined) throw new Error(`no fuzz target ${name} (${targets.map((x) => x.name).join(', ')})`)
  return t
}
