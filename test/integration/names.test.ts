/**
 * Look-alike and invisible names (issue 13 item 7), over a real server: the native protocol and the 004 gateway,
 * login and rename (`>>chname<<`) both. Each example is one the issue found accepted beside `alice`.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { startTestServer } from '../helpers/server.js'
import { NativeClient, registered } from '../helpers/native-client.js'
import { RawClient } from '../helpers/gateway-fixture.js'
import { decodeServer, encodeClient, encodePacket, type ServerMessage } from '../../src/protocols/p004/codec.js'
import { PROTOCOL_VERSION } from '../../src/protocols/native/frames.js'
import { errorCodeFromNumber } from '../../src/core/errors.js'

/** name → the error code and a fragment of the message that must refuse it, with `alice` registered. */
const REFUSED: [label: string, name: string, code: string, why: RegExp][] = [
  ['alice + combining grapheme joiner U+034F', 'alice\u034F', 'SB_ERR_NAME_INVALID', /invisible or blank character \(U\+034F\)/],
  ['Cyrillic а', '\u0430lice', 'SB_ERR_NAME_TAKEN', /looks like "alice"/],
  ['dotless ı', 'al\u0131ce', 'SB_ERR_NAME_TAKEN', /looks like "alice"/],
  ['fullwidth ａｌｉｃｅ', '\uFF41\uFF4C\uFF49\uFF43\uFF45', 'SB_ERR_NAME_TAKEN', /looks like "alice"/],
  ['case variant Alice', 'Alice', 'SB_ERR_NAME_TAKEN', /looks like "alice"/],
  ['case variant ALICE', 'ALICE', 'SB_ERR_NAME_TAKEN', /looks like "alice"/],
  ['Hangul filler U+3164 alone', '\u3164', 'SB_ERR_NAME_INVALID', /U\+3164/],
  ['alice + Hangul filler', 'alice\u3164', 'SB_ERR_NAME_INVALID', /U\+3164/],
  ['Braille blank U+2800 alone', '\u2800', 'SB_ERR_NAME_INVALID', /U\+2800/],
  ['alice + Braille blank', 'alice\u2800', 'SB_ERR_NAME_INVALID', /U\+2800/],
  ['variation selector-16', 'alice\uFE0F', 'SB_ERR_NAME_INVALID', /U\+FE0F/],
  ['variation selector-1', 'bob\uFE00', 'SB_ERR_NAME_INVALID', /U\+FE00/],
  ['zero width joiner', 'b\u200Dob', 'SB_ERR_NAME_INVALID', /spaces or control characters|U\+200D/],
  ['fullwidth ＡＬＬ', '\uFF21\uFF2C\uFF2C', 'SB_ERR_NAME_INVALID', /looks like the reserved name "ALL"/],
  [
    'fullwidth ＳＥＲＶＥＲ',
    '\uFF33\uFF25\uFF32\uFF36\uFF25\uFF32',
    'SB_ERR_NAME_INVALID',
    /looks like the reserved name "SERVER"/,
  ],
  ['Server', 'Server', 'SB_ERR_NAME_INVALID', /reserved/],
  ['Cyrillic ѕеrvеr', '\u0455\u0435rv\u0435r', 'SB_ERR_NAME_INVALID', /looks like the reserved name "SERVER"/],
  ['only symbols', '-_-', 'SB_ERR_NAME_INVALID', /no letter or digit/],
  ['a leading byte order mark', '\uFEFFcarol', 'SB_ERR_NAME_INVALID', /byte order mark \(U\+FEFF\)/],
]

async function refusedNative(c: NativeClient, name: string): Promise<{ code: string; message: string }> {
  const f = await c.request({ type: 'REGISTER', version: PROTOCOL_VERSION, flags: 0, name })
  assert.ok(f.type === 'ERROR', `REGISTER ${JSON.stringify(name)} was accepted`)
  return { code: errorCodeFromNumber(f.code), message: f.message }
}

test('native REGISTER refuses each look-alike and invisible name of the issue; plain distinct names still register', async (t) => {
  const { port } = await startTestServer(t)
  await registered(t, port, 'alice')
  const c = await NativeClient.connect(port, t)
  for (const [label, name, code, why] of REFUSED) {
    const err = await refusedNative(c, name)
    assert.equal(err.code, code, `${label}: ${err.message}`)
    assert.match(err.message, why, label)
  }
  // Nothing of those was created, nor silently changed into another name (the BOM one is not "carol").
  await registered(t, port, 'carol')
  await registered(t, port, 'alicia')
  await registered(t, port, 'Zoë')
  await registered(t, port, '山田')
  const bob = await registered(t, port, 'bob')
  // Rename over the native protocol follows the same rules, SERVER's text command included.
  const r = await bob.request({
    type: 'SEND',
    msgId: 1,
    to: { kind: 'server' },
    kind: 0,
    flags: 0,
    ttlMs: 0,
    notBefore: 0,
    body: Buffer.from('rename ALICE'),
  })
  assert.equal(r.type, 'ACCEPTED')
  const reply = await bob.next('DELIVER')
  assert.match(reply.msg.body.toString(), /error: the name "ALICE" looks like "alice"/)
})

const next004 = (c: RawClient) => c.next<ServerMessage>((b) => decodeServer(b))
async function text004(c: RawClient): Promise<string> {
  for (;;) {
    const m = await next004(c)
    if (m.kind === 'notice' || m.kind === 'welcome' || m.kind === 'renamed') return m.text
  }
}

async function login004(t: TestContext, port: number, name: string): Promise<{ c: RawClient; answer: string }> {
  const c = await RawClient.connect(t, port)
  c.write(encodeClient({ kind: 'login', name, utcOffsetSeconds: 0 }))
  return { c, answer: await text004(c) }
}

test('the 004 gateway refuses look-alikes at login and at >>chname<<, of native and of 004 names alike', async (t) => {
  const { server, port } = await startTestServer(t, { p004Port: 0 })
  const p004 = server.port('p004')
  await registered(t, port, 'alice')

  for (const name of ['\u0410lice', 'ALICE', 'al\u0131ce']) {
    const { answer } = await login004(t, p004, name)
    assert.equal(answer, 'The name is already in use', name)
  }
  const invisible = await login004(t, p004, 'alice\u034F')
  assert.match(invisible.answer, /^The name is not allowed: .*U\+034F/)
  const all = await login004(t, p004, '\uFF21\uFF2C\uFF2C')
  assert.match(all.answer, /^The name is not allowed: .*reserved name "ALL"/)

  const { c: dave, answer } = await login004(t, p004, 'dave')
  assert.match(answer, /^Commands:/)
  for (const name of ['ALICE', '\u0430lice']) {
    dave.write(encodePacket(4, `>>chname<< ${name}`))
    assert.equal(await text004(dave), 'The name is already in use', name)
  }
  dave.write(encodePacket(4, '>>chname<< ali\u034Fce'))
  assert.match(await text004(dave), /^Rename refused: .*U\+034F/)
  dave.write(encodePacket(4, '>>chname<< Dave')) // one's own name in another case is not a look-alike of someone else
  assert.equal(await text004(dave), 'Username changed to Dave')

  // A 004 name is protected the same way against a native registration.
  const n = await NativeClient.connect(port, t)
  const err = await refusedNative(n, 'DAVE')
  assert.equal(err.code, 'SB_ERR_NAME_TAKEN')
  assert.match(err.message, /looks like "Dave"/)
})
