/**
 * 004 gateway over real sockets, with raw clients that send the original client's bytes (captures/004).
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { brokerFixture, NativeClient, RawClient } from '../helpers/gateway-fixture.js'
import { elapse, until } from '../helpers/wait.js'
import { startP004 } from '../../src/protocols/p004/server.js'
import { decodeServer, encodeClient, encodePacket, hhmm, takeRaw, type ServerMessage } from '../../src/protocols/p004/codec.js'
import { decodeFileMessage } from '../../src/core/files.js'
import { startP001 } from '../../src/protocols/p001/server.js'
import { encode as encode001 } from '../../src/protocols/p001/codec.js'

const PACE = 20
const next = (c: RawClient, ms?: number) => c.next<ServerMessage>((b) => decodeServer(b), ms)
const text = async (c: RawClient) => {
  const m = await next(c)
  assert.ok(m.kind === 'notice' || m.kind === 'welcome' || m.kind === 'renamed', `a text packet, got ${m.kind}`)
  return m.text
}
/**
 * A line stamped `<HH:MM>` some time before it was read (presence notices wait out presenceSettleMs, and any line
 * may be stamped at 08:43:59.9 and read at 08:44:00.0): its minute is this one or the one before, never a fixed
 * guess that a minute boundary breaks. For a value built around the stamp (a whole packet, a decoded header).
 */
function assertStampedAs(actual: unknown, expected: (stamp: string) => unknown, offsetSeconds = 0): void {
  const stamps = [Date.now(), Date.now() - 60_000].map((at) => `<${hhmm(at, offsetSeconds)}>`)
  const matches = (stamp: string): boolean => {
    try {
      assert.deepEqual(actual, expected(stamp))
      return true
    } catch {
      return false
    }
  }
  // Neither minute: fail with the diff against this minute's.
  if (!stamps.some(matches)) assert.deepEqual(actual, expected(stamps[0]!))
}

/** A text line `<HH:MM> rest`, stamped this minute or the one before (in the recipient's offset). */
function assertStamped(actual: string, rest: string, offsetSeconds = 0): void {
  assertStampedAs(actual, (stamp) => `${stamp} ${rest}`, offsetSeconds)
}

async function setup(t: TestContext, opts: { maxFileBytes?: number; fileIdleMs?: number; presenceSettleMs?: number } = {}) {
  const fx = await brokerFixture(t, opts.maxFileBytes !== undefined ? { maxFileBytes: opts.maxFileBytes } : {})
  const gw = await startP004(fx.broker, {
    host: '127.0.0.1',
    port: 0,
    files: fx.files,
    paceMs: PACE,
    fileIdleMs: opts.fileIdleMs ?? 30_000,
    presenceSettleMs: opts.presenceSettleMs ?? 100,
  })
  fx.onClose(() => gw.close())
  return { ...fx, port: gw.port }
}

async function login(t: TestContext, port: number, name: string, offset: number | null = 0): Promise<RawClient> {
  const c = await RawClient.connect(t, port)
  c.write(encodeClient({ kind: 'login', name, utcOffsetSeconds: offset }))
  assert.equal(await text(c), "Commands: >>exit<<, >>sendfile<< 'filename', >>chname<< 'name'")
  return c
}

test('004 capture replay: welcome, name in use, notices, chat without echo, rename, file, exit', async (t) => {
  const { port } = await setup(t)
  const a = await login(t, port, 'alice')
  const probe = await RawClient.connect(t, port)
  probe.write('00080070726f62652030') // "probe 0", captures/004 t=1.81
  // the exact welcome bytes of the capture
  assert.equal(
    (await probe.read(65)).toString('hex'),
    '003f00436f6d6d616e64733a203e3e657869743c3c2c203e3e73656e6466696c653c3c202766696c656e616d65272c203e3e63686e616d653c3c20276e616d6527',
  )
  assertStamped(await text(a), `probe connected`)

  const b = await RawClient.connect(t, port)
  b.write(encodeClient({ kind: 'login', name: 'alice', utcOffsetSeconds: 0 }))
  assert.equal(
    (await b.read(29)).toString('hex'),
    Buffer.concat([Buffer.from('001b03', 'hex'), Buffer.from('The name is already in use')]).toString('hex'),
  )
  b.write(encodeClient({ kind: 'login', name: 'bob', utcOffsetSeconds: 0 }))
  assert.match(await text(b), /^Commands:/)
  assertStampedAs(await probe.read(24), (st) => encodePacket(3, `${st} bob connected`))
  assertStamped(await text(a), `bob connected`)

  a.write(encodeClient({ kind: 'message', text: 'hello everyone' }))
  assertStampedAs(await probe.read(33), (st) => encodePacket(3, `${st} [alice] hello everyone`))
  assertStamped(await text(b), `[alice] hello everyone`)
  // No echo to the sender: a's next text, below, is the rename notice.

  b.write(encodePacket(4, '>>chname<< robert extra'))
  assert.equal(await text(b), 'Username changed to robert')
  assertStamped(await text(probe), `User [bob] changed username to [robert]`)
  assertStamped(await text(a), `User [bob] changed username to [robert]`)
  a.write(encodeClient({ kind: 'rename', name: 'robert' }))
  assert.equal(await text(a), 'The name is already in use')

  // a file: header packet, raw bytes, then the notice — three separate, paced writes
  const data = Buffer.from('FILEDATA-0123456789\n')
  probe.chunks.length = 0
  a.write(encodeClient({ kind: 'file', size: data.length, filename: 'hello.txt', caption: 'a caption' }))
  a.write(data)
  const header = await next(probe)
  assertStampedAs(header, (st) => ({
    kind: 'file',
    header: `${st} [alice]`,
    size: 20,
    filename: 'hello.txt',
    caption: 'a caption',
  }))
  assert.deepEqual(await probe.read(20), data)
  assertStamped(await text(probe), `User alice uploaded file hello.txt`)
  assert.equal(probe.chunks.length, 3, 'header, bytes and notice arrive apart')
  for (let i = 1; i < 3; i++) assert.ok(probe.chunks[i]!.at - probe.chunks[i - 1]!.at >= PACE - 5, 'paced')
  const bh = await next(b)
  assert.equal(bh.kind, 'file')
  assert.deepEqual(await b.read(20), data)
  assert.match(await text(b), /uploaded file hello\.txt$/)

  b.write(encodeClient({ kind: 'exit' }))
  assert.ok(await b.closedByServer())
  assertStamped(await text(probe), `User robert disconnected`)
  assertStamped(await text(a), `User robert disconnected`)
  probe.write('000901' + Buffer.from('>>exit<<').toString('hex'))
  assertStamped(await text(a), `User probe disconnected`)
})

/**
 * The original 004 client receiving a file (ORIGINALS §004): one recv(1024) gives the header packet; it
 * sleeps one second; then it calls recv(1024) until it has the size the header announced, saving every byte
 * each recv returned; its next recv(1024) is the next packet. recv(n) here takes up to n of the bytes that
 * have arrived, as the kernel's would.
 */
async function originalReceivesFile(c: RawClient) {
  const recv = async (): Promise<Buffer> => {
    await until('bytes to recv', () => c.buf.length > 0, 5000)
    const out = Buffer.from(c.buf.subarray(0, 1024))
    c.buf = c.buf.subarray(out.length)
    return out
  }
  const first = decodeServer(await recv())
  assert.ok(first.ok && first.rest.length === 0, 'the header packet arrives alone')
  assert.equal(first.frame.kind, 'file')
  const size = first.frame.kind === 'file' ? first.frame.size : 0
  await elapse(1000) // the original's sleep after the header: it models the client, it waits for nothing
  let saved = Buffer.alloc(0)
  while (saved.length < size) saved = Buffer.concat([saved, await recv()])
  const next = decodeServer(await recv())
  assert.ok(next.ok && next.rest.length === 0, 'the packet after the file arrives alone')
  return { header: first.frame, saved, after: next.frame }
}

test('004 files to the original client: it saves exactly the bytes sent, then shows the notice', async (t) => {
  const { port } = await setup(t)
  const a = await login(t, port, 'alice')
  const b = await login(t, port, 'bob')
  assertStamped(await text(a), `bob connected`)
  for (const data of [
    Buffer.from('FILEDATA-0123456789\n'), // captures/004: 20 bytes, saved as 65 when the notice joined them
    Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 251)), // several recv(1024)
  ]) {
    // the original sender: the header packet, a second later the raw bytes
    a.write(encodeClient({ kind: 'file', size: data.length, filename: 'hello.txt', caption: 'a caption' }))
    await elapse(1000) // the original sender's pause between them (captures/004: 6.01 → 7.01)
    a.write(data)
    const got = await originalReceivesFile(b)
    assert.equal(got.header.kind === 'file' && got.header.size, data.length)
    assert.equal(got.saved.length, data.length, 'exactly the bytes sent are saved')
    assert.deepEqual(got.saved, data)
    assertStampedAs(got.after, (st) => ({ kind: 'notice', text: `${st} User alice uploaded file hello.txt` }))
  }
})

test('004 presence: a one-shot send and a 001 user are not announced; a user who stays is, and so is its leaving', async (t) => {
  const { port, nativePort, broker, onClose } = await setup(t, { presenceSettleMs: 1000 })
  const g1 = await startP001(broker, { host: '127.0.0.1', port: 0 })
  onClose(() => g1.close())
  const a = await login(t, port, 'alice')
  // what `switchboard send --to all` does: log in, send, wait for ACCEPTED, quit
  const once = await NativeClient.register(t, nativePort, 'once')
  const corr = once.sendText({ kind: 'all' }, 'hello room')
  await once.next('ACCEPTED', (x) => x.corr === corr)
  once.socket.end()
  // a 001 user (no room: it cannot hear alice) names itself and stays
  const cat = await RawClient.connect(t, g1.port)
  cat.write(encode001({ type: 0, messageId: 1, src: 'cat', dst: 'zed', text: 'x' }))
  await cat.read(28)
  // the marker: a native user who stays. Anything about "once" or "cat" would come before it.
  const stayer = await NativeClient.register(t, nativePort, 'stayer')
  assertStamped(await text(a), '[once] hello room')
  assertStamped(await text(a), 'stayer connected')
  stayer.socket.destroy()
  assertStamped(await text(a), 'User stayer disconnected')
})

test("004: <HH:MM> is each recipient's own time; a bare-name login (README) is UTC", async (t) => {
  const { port } = await setup(t)
  const east = await login(t, port, 'east', 3 * 3600)
  const bare = await login(t, port, 'bare', null)
  assertStamped(await text(east), `bare connected`, 3 * 3600)
  bare.write(encodeClient({ kind: 'message', text: 'hi' }))
  assertStamped(await text(east), `[bare] hi`, 3 * 3600)
  east.write(encodeClient({ kind: 'message', text: 'hello' }))
  assertStamped(await text(bare), `[east] hello`, 0)
})

test('004 files: too large is refused with a notice and drained; a native user downloads a 004 upload', async (t) => {
  const { port, broker, files, nativePort } = await setup(t, { maxFileBytes: 1000 })
  const n = await NativeClient.register(t, nativePort, 'nat')
  const a = await login(t, port, 'alice')
  const other = await login(t, port, 'other')
  await text(a) // other connected
  const big = Buffer.alloc(5000, 0x61)
  a.write(encodeClient({ kind: 'file', size: big.length, filename: 'big.bin', caption: '' }))
  a.write(big)
  assert.equal(await text(a), 'The file is too large: 5000 bytes, the limit is 1000 bytes (maxFileBytes)')
  // the drained bytes were not taken for packets: the connection works on
  a.write(encodeClient({ kind: 'message', text: 'after the big file' }))
  assertStamped(await text(other), `[alice] after the big file`)

  const small = Buffer.from('small file body')
  a.write(encodeClient({ kind: 'file', size: small.length, filename: 'note.txt', caption: 'for all' }))
  a.write(small)
  const m = await n.next('DELIVER', (d) => d.msg.kind === 1)
  const fm = decodeFileMessage(m.msg.body)
  assert.equal(fm?.name, 'note.txt')
  assert.equal(fm?.text, 'for all')
  assert.equal(fm?.sha256, createHash('sha256').update(small).digest('hex'))
  const dl = await files.openDownload(broker.sessionOf(n.id)!, m.msg.fileId)
  const chunks: Buffer[] = []
  for await (const c of dl.stream) chunks.push(c as Buffer)
  assert.deepEqual(Buffer.concat(chunks), small)
})

test('004 bad input: each refusal closes only its own connection and says why in the log', async (t) => {
  const { port, log } = await setup(t, { fileIdleMs: 200 })
  const good = await login(t, port, 'good')
  // a file whose bytes never come: a notice, then the connection is closed
  const slow = await login(t, port, 'slow')
  await text(good) // slow connected
  slow.write(encodeClient({ kind: 'file', size: 100, filename: 'never.bin', caption: '' }))
  slow.write(Buffer.alloc(10))
  assert.equal(await text(slow), 'The file never.bin did not arrive: 90 bytes missing')
  assert.ok(await slow.closedByServer())
  assert.ok(log.has('warn', /file never\.bin: 90 bytes still missing/))
  assertStamped(await text(good), `User slow disconnected`)

  const cases: [string, Buffer, RegExp][] = [
    ['len 0', Buffer.from('0000', 'hex'), /malformed packet: len 0/],
    ['login not UTF-8', encodePacket(0, Buffer.from('ff fe 20 30'.replace(/ /g, ''), 'hex')), /login is not valid UTF-8/],
    ['chat before login', encodePacket(3, 'hello?'), /message packet before login/],
    [
      'flood',
      Buffer.concat([
        encodeClient({ kind: 'login', name: 'fl', utcOffsetSeconds: 0 }),
        ...Array.from({ length: 500 }, () => encodePacket(9, '')),
      ]),
      /flood/,
    ],
  ]
  for (const [what, bytes, why] of cases) {
    const c = await RawClient.connect(t, port)
    c.write(bytes)
    assert.ok(await c.closedByServer(), `${what}: closed`)
    assert.ok(log.has('warn', why), `${what}: logged`)
  }
  // nothing reached good: the flooder came and went within presenceSettleMs, so it was not announced either
  good.write(encodeClient({ kind: 'rename', name: 'better' }))
  assert.equal(await text(good), 'Username changed to better')
})

test('004: takeRaw split check — a file split across many small writes arrives whole', async (t) => {
  const { port } = await setup(t)
  const a = await login(t, port, 'alice')
  const b = await login(t, port, 'bob')
  await text(a)
  const data = Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 251))
  const all = Buffer.concat([
    encodeClient({ kind: 'file', size: data.length, filename: 'x.bin', caption: '' }),
    data,
    encodeClient({ kind: 'message', text: 'after' }),
  ])
  for (let i = 0; i < all.length; i += 97) a.write(all.subarray(i, i + 97))
  const h = await next(b)
  assert.equal(h.kind, 'file')
  const got = takeRaw(await b.read(3000), 3000)
  assert.deepEqual(got.chunk, data)
  assert.match(await text(b), /uploaded file x\.bin/)
  assertStamped(await text(b), `[alice] after`)
})
