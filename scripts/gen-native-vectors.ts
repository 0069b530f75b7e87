/**
 * Generates the native protocol's golden vectors from hand-written frames:
 *   test/vectors/native/frames.json   every frame type, both directions, with edge cases
 *   test/vectors/native/invalid.json  malformed byte strings and what decode() must say about them
 *   test/vectors/native/schema.json   the message schema's kind codes and the msg layout (src/schema/message.ts),
 *                                     which the clients in other languages check their constants against
 *
 * Run: node --import tsx scripts/gen-native-vectors.ts
 * The JSON conventions (Buffers as {"$hex": …}, addresses, u53 as plain numbers) are in test/vectors/README.md.
 * Every good vector is decoded back before it is written, so a vector that the codec cannot mirror is never
 * committed. Regenerating must give the same bytes: nothing here reads the clock or random numbers.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { isDeepStrictEqual } from 'node:util'
import { decode, encode } from '../src/protocols/native/codec.js'
import { FRAMES, MSG_FIELDS, type Frame, type FrameName, type WireMessage } from '../src/protocols/native/frames.js'
import { KIND_NAMES, MESSAGE_KINDS } from '../src/schema/message.js'

const MAX_U53 = Number.MAX_SAFE_INTEGER // 2^53 - 1
const ALL_ID = 0xffffffff
const T = 1_700_000_000_000 // a fixed timestamp: 2023-11-14T22:13:20Z

const b = (s: string): Buffer => Buffer.from(s, 'utf8')

function msg(over: Partial<WireMessage>): WireMessage {
  return {
    seq: 1,
    msgId: 1,
    from: 1,
    fromName: 'alice',
    to: 2,
    topic: '',
    kind: 0,
    flags: 0,
    ts: T,
    expiresAt: 0,
    fileId: '',
    body: b('hi'),
    ...over,
  }
}

const frames: { name: string; frame: Frame }[] = [
  // ------------------------------------------------------------ client → server
  { name: 'REGISTER alice, push mode', frame: { type: 'REGISTER', corr: 1, version: 1, flags: 0, name: 'alice' } },
  { name: 'REGISTER a UTF-8 name in poll mode', frame: { type: 'REGISTER', corr: 2, version: 1, flags: 1, name: 'Zoë_日本' } },
  {
    name: 'REGISTER with an empty name (the server refuses it; the bytes are valid)',
    frame: { type: 'REGISTER', corr: 3, version: 1, flags: 0, name: '' },
  },
  {
    name: 'LOGIN by id with a token',
    frame: { type: 'LOGIN', corr: 1, version: 1, flags: 0, id: 2, name: '', token: 'Gm4n0Xb1yH0k5y3fXn7ZxQ2kq9b0Jv1w' },
  },
  {
    name: 'LOGIN by name (id 0) in poll mode',
    frame: { type: 'LOGIN', corr: 7, version: 1, flags: 1, id: 0, name: 'bob', token: 'secret' },
  },
  {
    name: 'LOGIN with a password (PASSWORD 2: id 0, the name, the password in token): a new device',
    frame: { type: 'LOGIN', corr: 8, version: 1, flags: 2, id: 0, name: 'bob', token: 'correct horse battery' },
  },
  {
    name: 'LOGIN send-only (SEND_ONLY 4) by id: beside the device session, handed nothing from the log',
    frame: { type: 'LOGIN', corr: 9, version: 1, flags: 4, id: 2, name: '', token: 'Gm4n0Xb1yH0k5y3fXn7ZxQ2kq9b0Jv1w' },
  },
  {
    name: 'LOGIN with the largest id and corr',
    frame: { type: 'LOGIN', corr: 0xffffffff, version: 1, flags: 0, id: 0xfffffffe, name: '', token: '' },
  },
  {
    name: 'SEND text to user #2 with a receipt',
    frame: {
      type: 'SEND',
      corr: 2,
      msgId: 1,
      to: { kind: 'user', id: 2 },
      kind: 0,
      flags: 1,
      ttlMs: 0,
      notBefore: 0,
      body: b('hi'),
    },
  },
  {
    name: 'SEND to a UTF-8 name, idempotent + receipt + read receipt',
    frame: {
      type: 'SEND',
      corr: 3,
      msgId: 42,
      to: { kind: 'name', name: 'Zoë' },
      kind: 0,
      flags: 7,
      ttlMs: 0,
      notBefore: 0,
      body: b('grüß dich'),
    },
  },
  {
    name: 'SEND to ALL (the room) with an empty body',
    frame: {
      type: 'SEND',
      corr: 4,
      msgId: 0,
      to: { kind: 'all' },
      kind: 0,
      flags: 0,
      ttlMs: 0,
      notBefore: 0,
      body: Buffer.alloc(0),
    },
  },
  {
    name: 'SEND a text command to SERVER',
    frame: {
      type: 'SEND',
      corr: 5,
      msgId: 0,
      to: { kind: 'server' },
      kind: 0,
      flags: 0,
      ttlMs: 0,
      notBefore: 0,
      body: b('whoami'),
    },
  },
  {
    name: 'SEND to a topic with a TTL and a notBefore',
    frame: {
      type: 'SEND',
      corr: 6,
      msgId: 9,
      to: { kind: 'topic', topic: 'news' },
      kind: 0,
      flags: 1,
      ttlMs: 60_000,
      notBefore: T + 5000,
      body: b('extra'),
    },
  },
  {
    name: 'SEND with u53 maxima (msgId and notBefore 2^53-1) and ttl 2^32-1',
    frame: {
      type: 'SEND',
      corr: 8,
      msgId: MAX_U53,
      to: { kind: 'user', id: 0xfffffffe },
      kind: 0,
      flags: 0,
      ttlMs: 0xffffffff,
      notBefore: MAX_U53,
      body: b('x'),
    },
  },
  {
    name: 'SEND to the empty name and the empty topic (refused by the server; valid bytes)',
    frame: {
      type: 'SEND',
      corr: 9,
      msgId: 2 ** 32,
      to: { kind: 'name', name: '' },
      kind: 0,
      flags: 0,
      ttlMs: 0,
      notBefore: 0,
      body: Buffer.from([0, 0xff, 0x80]),
    },
  },
  { name: 'ACK seq 1', frame: { type: 'ACK', corr: 10, seq: 1 } },
  { name: 'ACK seq 2^53-1', frame: { type: 'ACK', corr: 11, seq: MAX_U53 } },
  { name: 'TAKE up to 10, take mode, no wait', frame: { type: 'TAKE', corr: 12, max: 10, mode: 0, waitMs: 0 } },
  { name: 'TAKE up to 256, peek mode, long poll 30 s', frame: { type: 'TAKE', corr: 13, max: 256, mode: 1, waitMs: 30_000 } },
  { name: 'READ seq 3 (read receipt)', frame: { type: 'READ', corr: 14, seq: 3 } },
  { name: 'PING', frame: { type: 'PING', corr: 15 } },
  { name: 'PING with corr 0', frame: { type: 'PING', corr: 0 } },
  { name: 'REQUEST WHOAMI (empty arg)', frame: { type: 'REQUEST', corr: 16, op: 1, arg: '' } },
  { name: 'REQUEST WHO', frame: { type: 'REQUEST', corr: 17, op: 2, arg: '' } },
  { name: 'REQUEST RENAME to a UTF-8 name', frame: { type: 'REQUEST', corr: 18, op: 3, arg: 'Zoë' } },
  { name: 'REQUEST SUBSCRIBE news', frame: { type: 'REQUEST', corr: 19, op: 7, arg: 'news' } },
  { name: 'REQUEST BLOCK bob', frame: { type: 'REQUEST', corr: 20, op: 11, arg: 'bob' } },
  { name: 'REQUEST PRESENCE on', frame: { type: 'REQUEST', corr: 21, op: 14, arg: 'on' } },
  { name: 'REQUEST DEVICES', frame: { type: 'REQUEST', corr: 35, op: 16, arg: '' } },
  { name: 'REQUEST REVOKE device 3', frame: { type: 'REQUEST', corr: 36, op: 17, arg: '3' } },
  {
    name: 'REQUEST PASSWORD: change it (with the current one)',
    frame: { type: 'REQUEST', corr: 37, op: 18, arg: '{"password":"new secret","current":"old secret"}' },
  },
  { name: 'REQUEST PASSWORD: clear it (null)', frame: { type: 'REQUEST', corr: 38, op: 18, arg: '{"password":null}' } },
  {
    name: 'CONV request to user #2 (no conversation id yet)',
    frame: { type: 'CONV', corr: 22, action: 0, convId: '', to: { kind: 'user', id: 2 }, body: Buffer.alloc(0) },
  },
  {
    name: 'CONV accept',
    frame: {
      type: 'CONV',
      corr: 23,
      action: 1,
      convId: '6f1c1d9e-2b7a-4c55-9d3e-0a4b5c6d7e8f',
      to: { kind: 'server' },
      body: Buffer.alloc(0),
    },
  },
  {
    name: 'CONV message',
    frame: {
      type: 'CONV',
      corr: 24,
      action: 3,
      convId: '6f1c1d9e-2b7a-4c55-9d3e-0a4b5c6d7e8f',
      to: { kind: 'server' },
      body: b('psst'),
    },
  },
  {
    name: 'CONV close',
    frame: {
      type: 'CONV',
      corr: 25,
      action: 4,
      convId: '6f1c1d9e-2b7a-4c55-9d3e-0a4b5c6d7e8f',
      to: { kind: 'server' },
      body: Buffer.alloc(0),
    },
  },
  {
    name: 'FILE_BEGIN a 5-byte file to bob with a text',
    frame: {
      type: 'FILE_BEGIN',
      corr: 26,
      msgId: 3,
      to: { kind: 'name', name: 'bob' },
      flags: 1,
      size: 5,
      sha256: '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824',
      name: 'hello.txt',
      text: 'see attached',
    },
  },
  {
    name: 'FILE_BEGIN to ALL, a large size, empty text',
    frame: {
      type: 'FILE_BEGIN',
      corr: 27,
      msgId: 0,
      to: { kind: 'all' },
      flags: 0,
      size: 2 ** 40,
      sha256: '',
      name: 'ディスク.img',
      text: '',
    },
  },
  { name: 'FILE_CHUNK', frame: { type: 'FILE_CHUNK', corr: 28, uploadId: 'u1', data: b('hello') } },
  { name: 'FILE_CHUNK empty', frame: { type: 'FILE_CHUNK', corr: 29, uploadId: 'u1', data: Buffer.alloc(0) } },
  { name: 'FILE_END', frame: { type: 'FILE_END', corr: 30, uploadId: 'u1' } },
  { name: 'FILE_ABORT', frame: { type: 'FILE_ABORT', corr: 31, uploadId: 'u1' } },
  {
    name: 'DOWNLOAD the whole file (length 0)',
    frame: { type: 'DOWNLOAD', corr: 32, fileId: 'f-2cf24dba', offset: 0, length: 0 },
  },
  {
    name: 'DOWNLOAD a range beyond 4 GiB',
    frame: { type: 'DOWNLOAD', corr: 33, fileId: 'f-2cf24dba', offset: 2 ** 32 + 1, length: 65_536 },
  },
  { name: 'BYE', frame: { type: 'BYE', corr: 34 } },
  {
    name: 'HISTORY with bob by name, newest page (before 0), 50 at most',
    frame: { type: 'HISTORY', corr: 39, with: { kind: 'name', name: 'bob' }, before: 0, limit: 50 },
  },
  {
    name: 'HISTORY with user #2, the page before seq 41',
    frame: { type: 'HISTORY', corr: 40, with: { kind: 'user', id: 2 }, before: 41, limit: 20 },
  },
  {
    name: 'HISTORY of a topic',
    frame: { type: 'HISTORY', corr: 41, with: { kind: 'topic', topic: 'news' }, before: 0, limit: 256 },
  },
  {
    name: 'HISTORY of everything (ALL), before the largest seq',
    frame: { type: 'HISTORY', corr: 42, with: { kind: 'all' }, before: MAX_U53, limit: 1 },
  },

  // ------------------------------------------------------------ server → client
  {
    name: 'ERROR name taken (no limit)',
    frame: { type: 'ERROR', corr: 1, code: 4, limit: '', message: 'the name "alice" is already in use' },
  },
  {
    name: 'ERROR too large, naming maxTextBytes',
    frame: {
      type: 'ERROR',
      corr: 2,
      code: 2,
      limit: 'maxTextBytes',
      message: 'the text is longer than maxTextBytes (65536 bytes)',
    },
  },
  {
    name: 'ERROR malformed, corr 0 (not tied to a request)',
    frame: { type: 'ERROR', corr: 0, code: 1, limit: '', message: 'unknown frame type 0x30' },
  },
  {
    name: 'WELCOME after REGISTER (with the new token)',
    frame: {
      type: 'WELCOME',
      corr: 1,
      version: 1,
      id: 1,
      name: 'alice',
      token: 'Gm4n0Xb1yH0k5y3fXn7ZxQ2kq9b0Jv1w',
      heartbeatMs: 30_000,
      server: 'switchboard/0.1.0',
    },
  },
  {
    name: 'WELCOME after LOGIN (empty token: the client keeps its own)',
    frame: {
      type: 'WELCOME',
      corr: 7,
      version: 1,
      id: 2,
      name: 'Zoë_日本',
      token: '',
      heartbeatMs: 30_000,
      server: 'switchboard/0.1.0',
    },
  },
  { name: 'DELIVER a direct text message', frame: { type: 'DELIVER', corr: 0, msg: msg({ flags: 1 }) } },
  {
    name: 'DELIVER a room message (to = ALL 0xffffffff, seq 0: not stored, do not ACK)',
    frame: { type: 'DELIVER', corr: 0, msg: msg({ seq: 0, msgId: 0, to: ALL_ID, body: b('hello room') }) },
  },
  {
    name: 'DELIVER a topic copy with a TTL and a UTF-8 sender',
    frame: {
      type: 'DELIVER',
      corr: 0,
      msg: msg({ seq: 7, msgId: 9, from: 3, fromName: 'Zoë', topic: 'news', flags: 1, expiresAt: T + 60_000, body: b('extra') }),
    },
  },
  {
    name: 'DELIVER a SERVER notice (kind 3, from 0)',
    frame: {
      type: 'DELIVER',
      corr: 0,
      msg: msg({ seq: 0, msgId: 5, from: 0, fromName: 'SERVER', kind: 3, body: b('alice #1 via native') }),
    },
  },
  {
    name: 'DELIVER a file message (kind 1) with a fileId and an empty body',
    frame: {
      type: 'DELIVER',
      corr: 0,
      msg: msg({ seq: 2 ** 53 - 1, msgId: MAX_U53, kind: 1, fileId: 'f-2cf24dba', body: Buffer.alloc(0) }),
    },
  },
  {
    name: 'ACCEPTED delivered (room: 3 recipients, seq 0)',
    frame: { type: 'ACCEPTED', corr: 4, msgId: 0, status: 0, seq: 0, recipients: 3, fileId: '' },
  },
  {
    name: 'ACCEPTED queued (recipient online)',
    frame: { type: 'ACCEPTED', corr: 2, msgId: 1, status: 1, seq: 1, recipients: 1, fileId: '' },
  },
  {
    name: 'ACCEPTED stored (recipient offline)',
    frame: { type: 'ACCEPTED', corr: 2, msgId: 1, status: 2, seq: 5, recipients: 1, fileId: '' },
  },
  {
    name: 'ACCEPTED scheduled (notBefore in the future)',
    frame: { type: 'ACCEPTED', corr: 6, msgId: 9, status: 3, seq: 0, recipients: 1, fileId: '' },
  },
  {
    name: 'ACCEPTED duplicate (idempotent retry)',
    frame: { type: 'ACCEPTED', corr: 3, msgId: 42, status: 4, seq: 0, recipients: 1, fileId: '' },
  },
  {
    name: 'ACCEPTED a file (FILE_END answered with the file id)',
    frame: { type: 'ACCEPTED', corr: 30, msgId: 3, status: 1, seq: 4, recipients: 1, fileId: 'f-2cf24dba' },
  },
  {
    name: 'RECEIPT 200 delivered (live: ackSeq 0)',
    frame: {
      type: 'RECEIPT',
      corr: 0,
      msgId: 1,
      status: 200,
      recipient: 2,
      recipientName: 'bob',
      seq: 1,
      at: T + 12,
      topic: '',
      ackSeq: 0,
    },
  },
  {
    name: 'RECEIPT 202 stored',
    frame: {
      type: 'RECEIPT',
      corr: 0,
      msgId: 1,
      status: 202,
      recipient: 2,
      recipientName: 'bob',
      seq: 5,
      at: T,
      topic: '',
      ackSeq: 0,
    },
  },
  {
    name: 'RECEIPT 300 not yet (ack timeout)',
    frame: {
      type: 'RECEIPT',
      corr: 0,
      msgId: 1,
      status: 300,
      recipient: 2,
      recipientName: 'bob',
      seq: 1,
      at: T + 3000,
      topic: '',
      ackSeq: 0,
    },
  },
  {
    name: 'RECEIPT 410 expired, for a topic copy',
    frame: {
      type: 'RECEIPT',
      corr: 0,
      msgId: 9,
      status: 410,
      recipient: 3,
      recipientName: 'Zoë',
      seq: 7,
      at: T + 60_000,
      topic: 'news',
      ackSeq: 0,
    },
  },
  {
    name: 'RECEIPT 200 queued while the sender was away (ackSeq 12: ACK it)',
    frame: {
      type: 'RECEIPT',
      corr: 0,
      msgId: 1,
      status: 200,
      recipient: 2,
      recipientName: 'bob',
      seq: 1,
      at: T,
      topic: '',
      ackSeq: 12,
    },
  },
  {
    name: 'RECEIPT 507 dropped (queue full, never stored: seq 0)',
    frame: {
      type: 'RECEIPT',
      corr: 0,
      msgId: MAX_U53,
      status: 507,
      recipient: 2,
      recipientName: 'bob',
      seq: 0,
      at: T,
      topic: 'news',
      ackSeq: 0,
    },
  },
  { name: 'BATCH of 0 messages (nothing queued)', frame: { type: 'BATCH', corr: 12, msgs: [] } },
  {
    name: 'BATCH of 2 messages',
    frame: {
      type: 'BATCH',
      corr: 13,
      msgs: [msg({ seq: 1, body: b('one') }), msg({ seq: 2, msgId: 2, fromName: 'Zoë', from: 3, body: b('two') })],
    },
  },
  { name: 'NOTICE', frame: { type: 'NOTICE', corr: 0, code: 'maintenance', text: 'the server restarts at 02:00' } },
  { name: 'NOTICE with empty strings', frame: { type: 'NOTICE', corr: 0, code: '', text: '' } },
  { name: 'PONG', frame: { type: 'PONG', corr: 15 } },
  {
    name: 'RESULT WHOAMI (1 user)',
    frame: {
      type: 'RESULT',
      corr: 16,
      op: 1,
      text: 'alice',
      users: [{ id: 1, name: 'alice', protocol: 'native', since: T, lastSeen: T + 500 }],
      items: [],
    },
  },
  { name: 'RESULT WHO with 0 users', frame: { type: 'RESULT', corr: 17, op: 2, text: '', users: [], items: [] } },
  {
    name: 'RESULT WHO with 2 users',
    frame: {
      type: 'RESULT',
      corr: 17,
      op: 2,
      text: '',
      users: [
        { id: 1, name: 'alice', protocol: 'native', since: T, lastSeen: T + 500 },
        { id: 3, name: 'Zoë', protocol: 'http', since: T + 1, lastSeen: MAX_U53 },
      ],
      items: [],
    },
  },
  {
    name: 'RESULT TOPICS with 2 items',
    frame: {
      type: 'RESULT',
      corr: 19,
      op: 9,
      text: '',
      users: [],
      items: [
        { name: 'news', count: 2 },
        { name: 'ニュース', count: 0xffffffff },
      ],
    },
  },
  {
    name: 'RESULT SUBSCRIBE (1 = newly subscribed)',
    frame: { type: 'RESULT', corr: 19, op: 7, text: 'news', users: [], items: [{ name: 'news', count: 1 }] },
  },
  {
    name: 'RESULT CONVERSATION (the new conversation id)',
    frame: { type: 'RESULT', corr: 22, op: 20, text: '6f1c1d9e-2b7a-4c55-9d3e-0a4b5c6d7e8f', users: [], items: [] },
  },
  { name: 'RESULT UPLOAD (the upload id)', frame: { type: 'RESULT', corr: 26, op: 21, text: 'u1', users: [], items: [] } },
  { name: 'PRESENCE online', frame: { type: 'PRESENCE', corr: 0, id: 2, name: 'bob', online: 1, protocol: 'native', at: T } },
  { name: 'PRESENCE offline', frame: { type: 'PRESENCE', corr: 0, id: 3, name: 'Zoë', online: 0, protocol: 'http', at: T + 1 } },
  {
    name: 'CONV_EVENT request (with its expiry)',
    frame: {
      type: 'CONV_EVENT',
      corr: 0,
      event: 0,
      convId: '6f1c1d9e-2b7a-4c55-9d3e-0a4b5c6d7e8f',
      peerId: 1,
      peerName: 'alice',
      expiresAt: T + 60_000,
      reason: '',
      body: Buffer.alloc(0),
    },
  },
  {
    name: 'CONV_EVENT accepted',
    frame: {
      type: 'CONV_EVENT',
      corr: 0,
      event: 1,
      convId: '6f1c1d9e-2b7a-4c55-9d3e-0a4b5c6d7e8f',
      peerId: 2,
      peerName: 'bob',
      expiresAt: 0,
      reason: '',
      body: Buffer.alloc(0),
    },
  },
  {
    name: 'CONV_EVENT message',
    frame: {
      type: 'CONV_EVENT',
      corr: 0,
      event: 3,
      convId: '6f1c1d9e-2b7a-4c55-9d3e-0a4b5c6d7e8f',
      peerId: 1,
      peerName: 'alice',
      expiresAt: 0,
      reason: '',
      body: b('psst'),
    },
  },
  {
    name: 'CONV_EVENT closed (with a reason)',
    frame: {
      type: 'CONV_EVENT',
      corr: 0,
      event: 4,
      convId: '6f1c1d9e-2b7a-4c55-9d3e-0a4b5c6d7e8f',
      peerId: 1,
      peerName: 'alice',
      expiresAt: 0,
      reason: 'alice went offline',
      body: Buffer.alloc(0),
    },
  },
  { name: 'RENAMED', frame: { type: 'RENAMED', corr: 0, id: 1, oldName: 'alice', newName: 'Zoë' } },
  {
    name: 'FILE_INFO',
    frame: {
      type: 'FILE_INFO',
      corr: 32,
      fileId: 'f-2cf24dba',
      name: 'hello.txt',
      size: 5,
      sha256: '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824',
    },
  },
  { name: 'FILE_DATA the last chunk', frame: { type: 'FILE_DATA', corr: 32, offset: 0, last: 1, data: b('hello') } },
  {
    name: 'FILE_DATA a middle chunk beyond 4 GiB',
    frame: { type: 'FILE_DATA', corr: 33, offset: 2 ** 32 + 1, last: 0, data: Buffer.from([0, 1, 2, 0xff]) },
  },
  {
    name: 'RESULT DEVICES (JSON text)',
    frame: {
      type: 'RESULT',
      corr: 35,
      op: 16,
      text: JSON.stringify([
        { id: 1, label: 'native', createdAt: T, lastSeen: T + 500, online: true, current: true },
        { id: 3, label: 'native', createdAt: T + 60_000, lastSeen: T + 90_000, online: false, current: false },
      ]),
      users: [],
      items: [],
    },
  },
  { name: 'RESULT REVOKE (the revoked id)', frame: { type: 'RESULT', corr: 36, op: 17, text: '3', users: [], items: [] } },
  { name: 'RESULT PASSWORD', frame: { type: 'RESULT', corr: 37, op: 18, text: 'ok', users: [], items: [] } },
  {
    name: 'DELIVER a sent copy (flags SENT 8 | RECEIPT 1: from = you, to = whom it went to)',
    frame: {
      type: 'DELIVER',
      corr: 0,
      msg: msg({ seq: 4, msgId: 7, from: 1, fromName: 'alice', to: 2, flags: 9, body: b('hi bob') }),
    },
  },
  {
    name: 'READ_ELSEWHERE seq 12, read on another of your devices',
    frame: { type: 'READ_ELSEWHERE', corr: 0, seq: 12, at: T + 2000 },
  },
  { name: 'HISTORY_PAGE empty (nothing before)', frame: { type: 'HISTORY_PAGE', corr: 40, more: 0, msgs: [] } },
  {
    name: 'HISTORY_PAGE of 2, newest first, more to come (a received message and a sent copy)',
    frame: {
      type: 'HISTORY_PAGE',
      corr: 39,
      more: 1,
      msgs: [
        msg({ seq: 6, msgId: 3, from: 2, fromName: 'bob', to: 1, body: b('and you?') }),
        msg({ seq: 5, msgId: 8, from: 1, fromName: 'alice', to: 2, flags: 8, body: b('fine') }),
      ],
    },
  },
  { name: 'CLOSING revoked', frame: { type: 'CLOSING', corr: 0, reason: 'revoked', text: 'this device was revoked' } },
  { name: 'CLOSING replaced', frame: { type: 'CLOSING', corr: 0, reason: 'replaced', text: 'you logged in again elsewhere' } },
  { name: 'CLOSING idle', frame: { type: 'CLOSING', corr: 0, reason: 'idle', text: 'idle for more than 120 s' } },
  { name: 'CLOSING shutdown', frame: { type: 'CLOSING', corr: 0, reason: 'shutdown', text: 'the server is shutting down' } },
  {
    name: 'CLOSING error (after a fatal ERROR)',
    frame: { type: 'CLOSING', corr: 0, reason: 'error', text: 'unknown frame type 0x30' },
  },
]

/** JSON form of a frame: Buffers as {"$hex": …}, everything else as is. */
function toJson(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return { $hex: v.toString('hex') }
  if (Array.isArray(v)) return v.map(toJson)
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toJson(x)]))
  return v
}

const missing = (Object.keys(FRAMES) as FrameName[]).filter((n) => !frames.some((f) => f.frame.type === n))
if (missing.length > 0) throw new Error(`no vector for ${missing.join(', ')}`)

const good = frames.map(({ name, frame }) => {
  const bytes = encode(frame)
  const back = decode(bytes, Infinity)
  if (!back.ok || !isDeepStrictEqual(back.frame, frame) || back.rest.length !== 0)
    throw new Error(`vector "${name}" does not mirror`)
  return { name, dir: FRAMES[frame.type].dir, hex: bytes.toString('hex'), frame: toJson(frame) }
})

// ---------------------------------------------------------------- invalid inputs

const h = (parts: (string | Buffer)[]): string =>
  parts.map((p) => (typeof p === 'string' ? p.replace(/\s+/g, '') : p.toString('hex'))).join('')
const u32 = (n: number): string => n.toString(16).padStart(8, '0')
/** A frame with a correct length prefix around `type`, `corr` 1 and `body` (hex). */
const frameHex = (type: number, body: string): string => {
  const clean = body.replace(/\s+/g, '')
  return u32(5 + clean.length / 2) + type.toString(16).padStart(2, '0') + '00000001' + clean
}
const ping = encode({ type: 'PING', corr: 1 }).toString('hex')
const register = encode({ type: 'REGISTER', corr: 1, version: 1, flags: 0, name: 'alice' }).toString('hex')

interface Invalid {
  name: string
  hex: string
  /** decode()'s limit for this case; absent means 1048576 (the server's default). */
  maxFrameBytes?: number
  outcome: 'need-more' | 'malformed' | 'too-large'
  /** For too-large: the whole frame's size (length + 4), which a reader skips. */
  size?: number
  /** The corr the server echoes in its ERROR, when the header was readable. */
  corr?: number
}

const invalid: Invalid[] = [
  { name: 'empty input', hex: '', outcome: 'need-more' },
  { name: 'three bytes of a length prefix', hex: '000000', outcome: 'need-more' },
  { name: 'length prefix only (PING would need 5 more bytes)', hex: '00000005', outcome: 'need-more' },
  { name: 'a PING missing its last byte', hex: ping.slice(0, -2), outcome: 'need-more' },
  { name: 'a REGISTER missing its last byte', hex: register.slice(0, -2), outcome: 'need-more' },
  { name: 'length 0: shorter than the type and corr', hex: '00000000', outcome: 'malformed', corr: 0 },
  { name: 'length 4: shorter than the type and corr', hex: '0000000407000000', outcome: 'malformed', corr: 0 },
  { name: 'unknown frame type 0x00', hex: frameHex(0x00, ''), outcome: 'malformed', corr: 1 },
  { name: 'unknown frame type 0x30', hex: frameHex(0x30, ''), outcome: 'malformed', corr: 1 },
  { name: 'unknown frame type 0x11 (past the last client frame)', hex: frameHex(0x11, ''), outcome: 'malformed', corr: 1 },
  { name: 'unknown frame type 0x51 (past the last server frame)', hex: frameHex(0x51, ''), outcome: 'malformed', corr: 1 },
  { name: 'unknown frame type 0xff', hex: frameHex(0xff, ''), outcome: 'malformed', corr: 1 },
  { name: 'PING with a byte left over after its (zero) fields', hex: frameHex(0x07, '00'), outcome: 'malformed', corr: 1 },
  { name: 'ACK with a 4-byte seq (field runs past the frame)', hex: frameHex(0x04, '00000001'), outcome: 'malformed', corr: 1 },
  {
    name: 'REGISTER whose name length says 10 but 5 bytes follow',
    hex: frameHex(0x01, '0001 00 000a 616c696365'),
    outcome: 'malformed',
    corr: 1,
  },
  {
    name: 'REGISTER with invalid UTF-8 (ff fe) in the name',
    hex: frameHex(0x01, '0001 00 0002 fffe'),
    outcome: 'malformed',
    corr: 1,
  },
  {
    name: 'REGISTER with overlong UTF-8 (c0 80) in the name',
    hex: frameHex(0x01, '0001 00 0002 c080'),
    outcome: 'malformed',
    corr: 1,
  },
  {
    name: 'REGISTER with a UTF-8-encoded surrogate (ed a0 80)',
    hex: frameHex(0x01, '0001 00 0003 eda080'),
    outcome: 'malformed',
    corr: 1,
  },
  {
    name: 'REGISTER with a UTF-8 sequence cut short (e6 97)',
    hex: frameHex(0x01, '0001 00 0002 e697'),
    outcome: 'malformed',
    corr: 1,
  },
  { name: 'ACK with seq 2^53 (u53 out of range)', hex: frameHex(0x04, '0020000000000000'), outcome: 'malformed', corr: 1 },
  { name: 'ACK with seq 2^64-1 (u53 out of range)', hex: frameHex(0x04, 'ffffffffffffffff'), outcome: 'malformed', corr: 1 },
  {
    name: 'SEND with unknown address kind 5',
    hex: frameHex(0x03, '0000000000000001 05 00 00 00000000 0000000000000000 00000000'),
    outcome: 'malformed',
    corr: 1,
  },
  {
    name: 'SEND whose body length says 100 but 2 bytes follow',
    hex: frameHex(0x03, '0000000000000001 0000000002 00 01 00000000 0000000000000000 00000064 6869'),
    outcome: 'malformed',
    corr: 1,
  },
  { name: 'BATCH whose list count says 2 but holds none', hex: frameHex(0x45, '0002'), outcome: 'malformed', corr: 1 },
  {
    name: 'HISTORY_PAGE whose list count says 1 but holds none',
    hex: frameHex(0x50, '01 0001'),
    outcome: 'malformed',
    corr: 1,
  },
  {
    name: 'HISTORY with a 1-byte limit (field runs past the frame)',
    hex: frameHex(0x10, '02 0000000000000000 32'),
    outcome: 'malformed',
    corr: 1,
  },
  { name: 'RESULT with a users count of 1 and no user', hex: frameHex(0x48, '01 0000 0001'), outcome: 'malformed', corr: 1 },
  {
    name: 'a 1 MiB + 1 byte frame announced by its length alone (too large before any body arrives)',
    hex: u32(1024 * 1024 - 3),
    outcome: 'too-large',
    size: 1024 * 1024 + 1,
  },
  {
    name: 'a SEND of 44 bytes against a 32-byte limit (whole frame present)',
    hex: encode({
      type: 'SEND',
      corr: 9,
      msgId: 1,
      to: { kind: 'user', id: 2 },
      kind: 0,
      flags: 0,
      ttlMs: 0,
      notBefore: 0,
      body: b('0123'),
    }).toString('hex'),
    maxFrameBytes: 32,
    outcome: 'too-large',
    size: 44,
    corr: 9,
  },
  { name: 'length 2^32-1 (too large, not need-more)', hex: h(['ffffffff', '07']), outcome: 'too-large', size: 2 ** 32 + 3 },
]

for (const v of invalid) {
  const d = decode(Buffer.from(v.hex, 'hex'), v.maxFrameBytes ?? 1024 * 1024)
  if (d.ok || d.reason !== v.outcome) throw new Error(`invalid vector "${v.name}": decode says ${d.ok ? 'ok' : d.reason}`)
  if (d.reason === 'too-large' && d.size !== v.size) throw new Error(`invalid vector "${v.name}": size ${d.size}`)
}

const dir = new URL('../test/vectors/native/', import.meta.url)
mkdirSync(dir, { recursive: true })
writeFileSync(new URL('frames.json', dir), JSON.stringify(good, null, 2) + '\n')
writeFileSync(new URL('invalid.json', dir), JSON.stringify(invalid, null, 2) + '\n')
const schema = {
  kinds: Object.fromEntries(KIND_NAMES.map((k) => [k, MESSAGE_KINDS[k].code])),
  msg: MSG_FIELDS.map(([name, type]) => [name, type]),
}
writeFileSync(new URL('schema.json', dir), JSON.stringify(schema, null, 2) + '\n')
process.stdout.write(
  `wrote ${good.length} frame vectors, ${invalid.length} invalid inputs and the schema (${KIND_NAMES.length} kinds) to test/vectors/native/\n`,
)
