// Seed 003 codec: golden vectors (parse / generate / mirror), tolerant parsing, UTF-8 policy, properties.
// ZeroMQ delivers whole messages, so there is no byte stream to split: each vector is one frame.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import {
  conversationPublication,
  encodeRequest,
  mailPublication,
  parsePublication,
  parseRegisterReply,
  parseRequest,
  registerReply,
  topicPrefix,
  isValidName,
  prefixesClash,
  prefixName,
  EMPTY_REPLY,
  type KnownRequest,
  type Publication,
} from '../../../src/protocols/p003/codec.js'

interface Vector {
  name: string
  source: string
  direction: 'client-to-server' | 'server-to-client'
  socket: 'REQ' | 'REP' | 'PUB'
  hex: string
  canonical: boolean
  frame: Record<string, unknown> & { kind: string }
}
const vectors = JSON.parse(readFileSync(new URL('../../vectors/p003/vectors.json', import.meta.url), 'utf8')) as Vector[]
const fuzz = { seed: Number(process.env.FUZZ_SEED ?? 3003), numRuns: Number(process.env.FUZZ_RUNS ?? 300) }
const bytes = (v: Vector) => Buffer.from(v.hex, 'hex')

function parse(v: Vector, msg: Buffer | string): unknown {
  if (v.socket === 'REQ') return parseRequest(msg)
  if (v.socket === 'PUB') return parsePublication(msg)
  if (v.frame.kind === 'empty-reply') return msg.toString() === EMPTY_REPLY ? { kind: 'empty-reply' } : null
  const addresses = parseRegisterReply(msg)
  return addresses && { kind: 'register-reply', addresses }
}
function generate(v: Vector): string {
  const f = v.frame
  if (v.socket === 'REQ') return encodeRequest(f as unknown as KnownRequest)
  if (v.socket === 'REP') return f.kind === 'empty-reply' ? EMPTY_REPLY : registerReply(...(f.addresses as [string, string]))
  const p = f as unknown as Publication
  if (p.kind === 'mail') return mailPublication(p.target, p.from, p.text)
  if (p.kind === 'conversation') return conversationPublication(p.target, p.from, p.address)
  throw new Error(`no generator for ${p.kind}`)
}

for (const v of vectors) {
  test(`003 parse: ${v.name}`, () => {
    assert.deepEqual(parse(v, bytes(v)), v.frame)
    // The same text given as a string parses the same (except bytes that are not UTF-8).
    if (v.canonical) assert.deepEqual(parse(v, bytes(v).toString('utf8')), v.frame)
  })
  if (v.canonical) {
    test(`003 generate: ${v.name}`, () => {
      assert.equal(Buffer.from(generate(v), 'utf8').toString('hex'), v.hex)
    })
  }
}

test('003 vectors: every captured REQ has its PUB, and each is an e-mail or a conversation', () => {
  const req = vectors.filter((v) => v.socket === 'REQ' && v.source.startsWith('captures/'))
  const pub = vectors.filter((v) => v.socket === 'PUB')
  assert.ok(req.length >= 3 && pub.length >= 3)
  for (const p of pub) {
    const r = req.find((q) => q.frame.kind === p.frame.kind && q.frame.target === p.frame.target)
    assert.ok(r, p.name)
    assert.deepEqual(p.frame, r.frame) // the PUB carries the same fields as the REQ
  }
})

test('003 tolerant parsing: extra blanks as Python split() would, text kept verbatim', () => {
  assert.deepEqual(parseRequest('reg   A  '), { kind: 'register', name: 'A' })
  assert.deepEqual(parseRequest('reg A\n'), { kind: 'register', name: 'A' })
  assert.deepEqual(parseRequest(';;  B   De:A\n  spaced  \n'), { kind: 'mail', target: 'B', from: 'A', text: '  spaced  \n' })
  assert.deepEqual(parseRequest(';; B De: A'), { kind: 'mail', target: 'B', from: 'A', text: '' })
  assert.deepEqual(parseRequest(';; B De: A\r\nwindows'), { kind: 'mail', target: 'B', from: 'A', text: 'windows' })
  assert.deepEqual(parseRequest('#  A   B tcp://h:1 '), { kind: 'conversation', from: 'A', target: 'B', address: 'tcp://h:1' })
})

test('003 anything else is unknown, never a guess', () => {
  for (const s of [
    '',
    'reg',
    'reg ',
    'reg A B',
    'register A',
    ';; B',
    ';; B From: A\nx',
    '# A B',
    '# A B c d',
    '@B hi',
    'refresh',
    'logoff',
  ]) {
    assert.deepEqual(parseRequest(s), { kind: 'unknown', text: s }, JSON.stringify(s))
  }
  assert.equal(parsePublication('@B@ hello').kind, 'unknown')
  assert.equal(parseRegisterReply('tcp://only-one'), null)
})

test('003 UTF-8: a request that is not valid UTF-8 is unknown, even if it looks like a command', () => {
  const r = parseRequest(Buffer.from('reg A\xff', 'latin1'))
  assert.deepEqual(r, { kind: 'unknown', text: 'reg A\ufffd' })
  const ok = parseRequest(Buffer.from('reg José'))
  assert.deepEqual(ok, { kind: 'register', name: 'José' })
})

test('003 topic prefixes: what a client subscribes to matches what the server publishes', () => {
  assert.equal(topicPrefix('B'), '@B@')
  assert.ok(mailPublication('B', 'A', 'x').startsWith(topicPrefix('B')))
  assert.ok(conversationPublication('B', 'A', 'tcp://h:1').startsWith(topicPrefix('B')))
  // '@B@' must not match a publication for '@BC@': the trailing '@' is what makes prefixes exact.
  assert.ok(!mailPublication('BC', 'A', 'x').startsWith(topicPrefix('B')))
  // …which only holds while no name is another plus '@…' ('B@C' would be caught by a '@B@' filter):
  // '@' is accepted inside a name (the original asks for an e-mail address), and such pairs clash.
  assert.ok(mailPublication('B@C', 'A', 'x').startsWith(topicPrefix('B')))
  assert.equal(isValidName('ana@mail.com'), true)
  assert.equal(isValidName('@ana'), false)
  assert.ok(prefixesClash('B', 'B@C'))
  assert.ok(prefixesClash('B@C', 'B'))
  assert.ok(!prefixesClash('B', 'BC'))
  assert.ok(!prefixesClash('B', 'B'))
  assert.deepEqual(parsePublication(mailPublication('ana@mail.com', 'A', 'x')), {
    kind: 'mail',
    target: 'ana@mail.com',
    from: 'A',
    text: 'x',
  })
  assert.equal(prefixName(topicPrefix('ana@mail.com')), 'ana@mail.com')
  assert.equal(prefixName('@news@'), 'news')
  for (const f of ['', '@', '@@', 'news', '@news', '@a b@', Buffer.from([0x40, 0xff, 0x40])])
    assert.equal(prefixName(f), undefined)
  assert.equal(isValidName('a b'), false)
  assert.equal(isValidName(''), false)
  assert.equal(isValidName('José'), true)
})

const word = fc.string({ unit: 'binary', minLength: 1, maxLength: 16 }).filter((s) => !/[\s@]/.test(s))
const text = fc.string({ unit: 'binary', maxLength: 200 })
const requestArb: fc.Arbitrary<KnownRequest> = fc
  .oneof(
    fc.record({ kind: fc.constant('register' as const), name: word }),
    fc.record({ kind: fc.constant('mail' as const), target: word, from: word, text }),
    fc.record({ kind: fc.constant('conversation' as const), from: word, target: word, address: word }),
  )
  .map((r) => ({ ...r }))

test(`003 property: parseRequest(encodeRequest(r)) equals r, as string and as bytes (seed ${fuzz.seed})`, () => {
  fc.assert(
    fc.property(requestArb, (r) => {
      const s = encodeRequest(r)
      assert.deepEqual(parseRequest(s), r)
      assert.deepEqual(parseRequest(Buffer.from(s)), r)
    }),
    fuzz,
  )
})

test(`003 property: publications and register replies round-trip (seed ${fuzz.seed})`, () => {
  fc.assert(
    fc.property(word, word, text, word, (target, from, body, address) => {
      assert.deepEqual(parsePublication(mailPublication(target, from, body)), { kind: 'mail', target, from, text: body })
      assert.deepEqual(parsePublication(conversationPublication(target, from, address)), {
        kind: 'conversation',
        target,
        from,
        address,
      })
      assert.deepEqual(parseRegisterReply(registerReply(target, address)), [target, address])
    }),
    fuzz,
  )
})

test(`003 property: parsers never throw on arbitrary bytes or strings (seed ${fuzz.seed})`, () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
        fc.string({ unit: 'binary', maxLength: 200 }),
      ),
      (msg) => {
        const r = parseRequest(msg)
        assert.ok(['register', 'mail', 'conversation', 'unknown'].includes(r.kind))
        if (r.kind === 'unknown') assert.equal(typeof r.text, 'string')
        parsePublication(msg)
        parseRegisterReply(msg)
      },
    ),
    fuzz,
  )
})
