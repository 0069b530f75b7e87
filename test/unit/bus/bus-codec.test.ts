import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { decodeBus, encodeBus } from '../../../src/bus/redis/bus-codec.js'
import type { BusMessage } from '../../../src/bus/bus.js'
import type { WireMessage } from '../../../src/bus/redis/bus-codec.js'
import { ALL_ID, type Message } from '../../../src/core/types.js'

const msg: Message = {
  seq: 7,
  msgId: 42,
  from: 3,
  fromName: 'Zoë',
  to: ALL_ID,
  kind: 'file',
  ts: 1_700_000_000_123,
  body: Buffer.from([0, 1, 2, 0xff, 0x7b, 0x22]),
  flags: 5,
  topic: 'news',
  expiresAt: 1_700_000_060_000,
  fileId: 'abc',
}

const { topic: _topic, ...notTopic } = msg
const direct: Message = { ...notTopic, to: 5, peer: 3 }

const samples: WireMessage[] = [
  { type: 'wake', user: 12 },
  // a wake carrying the committed messages, in seq order
  { type: 'wake', user: 5, msgs: [direct, { ...direct, seq: 8, body: Buffer.from('ü') }] },
  {
    type: 'batch',
    msgs: [
      { type: 'wake', user: 5, msgs: [direct] },
      { type: 'wake', user: 6 },
      { type: 'revoke', user: 1, device: 2 },
    ],
  },
  { type: 'where', user: 12, device: 3, node: 'n1', online: true },
  { type: 'where', user: 12, device: 3, node: 'n1', online: false },
  { type: 'reaped', node: 'n2' },
  { type: 'kick', user: 12, device: 3, reason: 'replaced', node: 'n1', since: 1700000000000 },
  // null: every session of the user (a legacy name's one session), whichever device it is
  { type: 'kick', user: 12, device: null, reason: 'replaced', node: 'n1', since: 1700000000000 },
  { type: 'revoke', user: 12, device: 3 },
  // a receipt for a sender on the receiving node, live; with a topic when it is about a topic message
  { type: 'receipt', to: 5, receipt: { msgId: 1, status: 200, recipient: 9, recipientName: 'x', seq: 4, at: 5 } },
  { type: 'receipt', to: 5, receipt: { msgId: 2, status: 210, recipient: 9, recipientName: 'x', seq: 4, at: 5, topic: 'news' } },
  // also pushed to a session on the publishing node: not stored where the user is gone
  { type: 'receipt', to: 5, receipt: { msgId: 3, status: 200, recipient: 9, recipientName: 'x', seq: 5, at: 6 }, pushed: true },
  { type: 'event', to: 5, ev: { type: 'message', msg } },
  { type: 'broadcast', ev: { type: 'message', msg: { ...msg, seq: 0, body: Buffer.alloc(0) } }, except: 3 },
  {
    type: 'event',
    to: 5,
    ev: { type: 'receipt', receipt: { msgId: 1, status: 200, recipient: 9, recipientName: 'x', seq: 4, at: 5 }, seq: 0 },
  },
  {
    type: 'event',
    to: 5,
    ev: { type: 'conversation', ev: { event: 'message', convId: 'c1', peer: { id: 1, name: 'a' }, body: Buffer.from('hi ☺') } },
  },
  {
    type: 'event',
    to: 5,
    ev: { type: 'conversation', ev: { event: 'closed', convId: 'c1', peer: { id: 1, name: 'a' }, reason: 'bye' } },
  },
  {
    type: 'broadcast',
    ev: { type: 'presence', user: { id: 1, name: 'a' }, online: false, protocol: 'native', at: 9 },
    except: 1,
  },
  { type: 'broadcast', ev: { type: 'rename', user: { id: 1, name: 'b' }, oldName: 'a' }, except: 1 },
  // Free-form data that uses the codec's own marker keys must come back as it was, not as a Buffer.
  {
    type: 'event',
    to: 2,
    ev: { type: 'notice', code: 'x', text: 't', data: { $b64: 'AAAA', $esc: { $b64: 'QQ==' }, n: [1, { $b64: 'x' }] } },
  },
]

test('every kind of bus message round-trips, Buffers included', () => {
  const kinds = new Set(samples.map((m) => m.type))
  assert.deepEqual(
    [...kinds].sort(),
    ['batch', 'broadcast', 'event', 'kick', 'reaped', 'receipt', 'revoke', 'wake', 'where'],
    'a sample of every type',
  )
  for (const m of samples) {
    const d = decodeBus(encodeBus('node-a', m))
    assert.ok(d.ok, JSON.stringify(d))
    assert.equal(d.node, 'node-a')
    assert.deepEqual(d.msg, m)
  }
  const withBody = samples.find((m) => m.type === 'event' && m.ev.type === 'message')!
  const d = decodeBus(Buffer.from(encodeBus('n', withBody)))
  assert.ok(d.ok && d.msg.type === 'event' && d.msg.ev.type === 'message')
  assert.ok(Buffer.isBuffer(d.msg.ev.msg.body), 'the body comes back as a Buffer')
})

test('a Map-valued field (a local cache) and undefined fields are not sent', () => {
  const withWire = { ...msg, wire: new Map([['native', Buffer.from('xx')]]), notBefore: undefined } as Message
  const text = encodeBus('n', { type: 'event', to: 1, ev: { type: 'message', msg: withWire } })
  assert.ok(!text.includes('wire') && !text.includes('notBefore'))
  const d = decodeBus(text)
  assert.ok(d.ok)
  assert.deepEqual(d.msg, { type: 'event', to: 1, ev: { type: 'message', msg } })
})

test('bodies are base64, not JSON byte arrays (size stays ~4/3)', () => {
  const big = Buffer.alloc(30_000, 0xab)
  const text = encodeBus('n', { type: 'event', to: 1, ev: { type: 'message', msg: { ...msg, body: big } } })
  assert.ok(text.length < 30_000 * 1.4, `encoded ${text.length} bytes`)
})

test('decoding rejects what is not a bus message, without throwing', () => {
  const bad = [
    '',
    'nul',
    '[]',
    '{}',
    '{"v":1,"n":"a","m":{"type":"wake","user":1}}', // a node of the release before devices
    '{"v":2,"n":"a","m":{"type":"wake","user":1}}', // a node of the release before targeted wakes
    '{"v":3,"n":"a","m":{"type":"wake","user":1}}', // a node of the release before live receipts between nodes
    '{"v":5,"n":"a","m":{"type":"wake","user":1}}',
    // a receipt must carry what the sender's adapter encodes
    '{"v":4,"n":"a","m":{"type":"receipt","to":1}}',
    '{"v":4,"n":"a","m":{"type":"receipt","to":1,"receipt":{"msgId":1,"status":200,"recipient":9,"recipientName":"x","seq":4,"at":5},"pushed":false}}',
    '{"v":4,"n":"a","m":{"type":"receipt","receipt":{"msgId":1,"status":200,"recipient":9,"recipientName":"x","seq":4,"at":5}}}',
    '{"v":4,"n":"a","m":{"type":"receipt","to":1,"receipt":{"msgId":1,"status":200,"recipient":9,"seq":4,"at":5}}}',
    '{"v":4,"n":"a","m":{"type":"receipt","to":1,"receipt":{"msgId":1,"status":"200","recipient":9,"recipientName":"x","seq":4,"at":5}}}',
    '{"v":4,"n":"a","m":{"type":"receipt","to":1,"receipt":{"msgId":1,"status":200,"recipient":9,"recipientName":"x","seq":4,"at":5,"topic":7}}}',
    // a carried message must have what delivery reads: a body (bytes), a seq, a kind
    '{"v":4,"n":"a","m":{"type":"wake","user":1,"msgs":[{"seq":1}]}}',
    '{"v":4,"n":"a","m":{"type":"wake","user":1,"msgs":{}}}',
    '{"v":4,"n":"a","m":{"type":"wake","user":1,"msgs":[{"seq":1,"to":1,"from":2,"msgId":3,"ts":4,"flags":0,"kind":"text","fromName":"a","body":"x"}]}}',
    '{"v":4,"n":"a","m":{"type":"batch","msgs":[{"type":"wake","user":1},{"type":"wake"}]}}',
    '{"v":4,"n":"a","m":{"type":"batch","msgs":[{"type":"batch","msgs":[]}]}}',
    '{"v":4,"n":"a","m":{"type":"batch"}}',
    '{"v":4,"n":"a","m":{"type":"where","user":1,"device":2,"node":"n","online":"yes"}}',
    '{"v":4,"n":"a","m":{"type":"where","user":1,"node":"n","online":true}}',
    '{"v":4,"n":"a","m":{"type":"reaped"}}',
    '{"v":4,"m":{"type":"wake","user":1}}',
    '{"v":4,"n":"a","m":{"type":"wake"}}',
    '{"v":4,"n":"a","m":{"type":"nope"}}',
    '{"v":4,"n":"a","m":{"type":"event","to":1}}',
    '{"v":4,"n":"a","m":{"type":"kick","user":1,"reason":"x"}}',
    // a kick must say which device, or null for all: a missing device is not read as "all"
    '{"v":4,"n":"a","m":{"type":"kick","user":1,"reason":"replaced","node":"b","since":5}}',
    '{"v":4,"n":"a","m":{"type":"kick","user":1,"device":"3","reason":"replaced","node":"b","since":5}}',
    '{"v":4,"n":"a","m":{"type":"revoke","user":1}}',
    '{"v":4,"n":"a","m":{"type":"revoke","user":1,"device":null}}',
    '{"v":4,"n":"a","m":{"type":"revoke","device":4}}',
    '{"v":4,"n":"a","m":null}',
  ]
  for (const b of bad) {
    const d = decodeBus(b)
    assert.equal(d.ok, false, b)
  }
})

test('a __proto__ key in a peer message does not change prototypes', () => {
  const d = decodeBus(
    '{"v":4,"n":"a","m":{"type":"event","to":1,"ev":{"type":"notice","code":"c","text":"t","data":{"__proto__":{"polluted":1}}}}}',
  )
  assert.ok(d.ok)
  assert.equal(({} as Record<string, unknown>).polluted, undefined)
  assert.ok(d.msg.type === 'event' && d.msg.ev.type === 'notice')
  assert.equal(Object.getPrototypeOf(d.msg.ev.data), Object.prototype)
})

test('property: arbitrary bodies and notice data round-trip; arbitrary text never throws', () => {
  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 100_000)
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 300 }),
      fc.jsonValue().filter((v) => !JSON.stringify(v).includes('__proto__')),
      fc.string(),
      (bytes, data, name) => {
        const m: BusMessage = {
          type: 'event',
          to: 1,
          ev: { type: 'notice', code: name, text: name, data: { d: data as unknown, b: Buffer.from(bytes) } },
        }
        const d = decodeBus(encodeBus(name, m))
        assert.ok(d.ok)
        const back = d.msg.type === 'event' && d.msg.ev.type === 'notice' ? d.msg.ev.data : undefined
        assert.ok(back !== undefined && Buffer.from(bytes).equals(back.b as Buffer))
        assert.deepEqual(JSON.stringify(back.d), JSON.stringify(data))
      },
    ),
    { seed, numRuns: Number(process.env.FUZZ_RUNS ?? 300) },
  )
  fc.assert(
    fc.property(fc.string(), (s) => void decodeBus(s)),
    { seed, numRuns: 300 },
  )
})
