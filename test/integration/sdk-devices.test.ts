/**
 * The TypeScript SDK with several devices per user against a real server: connect with a password (a new device
 * whose token is kept, saved and reconnected with), sent copies, 'read' events, history pages, devices and
 * revoke, and a send-only client beside a device's own session.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startTestServer } from '../helpers/server.js'
import { until } from '../helpers/wait.js'
import {
  FileCredentialStore,
  SwitchboardClient,
  SwitchboardError,
  type ClosedEvent,
  type ReadEvent,
} from '../../src/client/index.js'
import { client, inbox } from '../helpers/sdk.js'

const PASSWORD = 'correct horse battery'

test('connect with a password makes a new device: its token is kept, saved, and used to reconnect', async (t) => {
  const { port } = await startTestServer(t)
  const dir = mkdtempSync(join(tmpdir(), 'sb-creds-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const creds = new FileCredentialStore(join(dir, 'credentials.json'))

  const laptop = await client(t, { port, name: 'bob' })
  await assert.rejects(laptop.setPassword('short'), (e: SwitchboardError) => e.code === 'SB_ERR_PASSWORD_INVALID')
  await laptop.setPassword(PASSWORD)
  // Changing it needs the current one.
  await assert.rejects(laptop.setPassword('another password'), (e: SwitchboardError) => e.code === 'SB_ERR_AUTH')

  const phone = await client(t, { port, name: 'bob', password: PASSWORD, credentials: creds })
  assert.equal(phone.id, laptop.id)
  assert.ok(phone.token.length >= 16 && phone.token !== laptop.token)
  assert.deepEqual(creds.get(`127.0.0.1:${port}`, 'bob'), { id: phone.id, name: 'bob', token: phone.token })
  const list = await phone.devices()
  assert.equal(list.length, 2)
  assert.equal(list.filter((d) => d.current).length, 1)
  assert.ok(list.every((d) => d.online))

  // A wrong password is refused with SB_ERR_AUTH.
  await assert.rejects(
    SwitchboardClient.connect({ port, name: 'bob', password: 'not the password', reconnect: false }),
    (e: SwitchboardError) => e.code === 'SB_ERR_AUTH',
  )

  // The saved token is that device: a later connect without the password logs in as it, making no new device.
  const phoneDevice = list.find((d) => d.current)!.id
  await phone.close(200)
  const again = await client(t, { port, name: 'bob', credentials: creds, register: false })
  assert.equal(again.token, phone.token)
  const after = await again.devices()
  assert.equal(after.length, 2)
  assert.equal(after.find((d) => d.current)!.id, phoneDevice)
})

test('both devices get a message; the other device sees a sent copy and a read event; the sender gets one 200 and one 210', async (t) => {
  const { port } = await startTestServer(t)
  const alice = await client(t, { port, name: 'alice' })
  inbox(alice)
  const bob1 = await client(t, { port, name: 'bob', autoRead: true })
  await bob1.setPassword(PASSWORD)
  const bob2 = await client(t, { port, name: 'bob', password: PASSWORD })
  const got1 = inbox(bob1)
  const got2 = inbox(bob2)
  const reads2: ReadEvent[] = []
  bob2.on('read', (r) => reads2.push(r))
  const receipts: number[] = []
  alice.on('receipt', (r) => receipts.push(r.status))

  await alice.send('bob', 'to every device', { readReceipt: true })
  await until('both devices', () => got1.length === 1 && got2.length === 1)
  assert.deepEqual(
    [got1[0]!.text, got2[0]!.text, got1[0]!.sent, got2[0]!.sent],
    ['to every device', 'to every device', false, false],
  )
  // bob1 reads automatically (autoRead): bob2 is told, alice gets 210.
  await until('a read event on bob2', () => reads2.find((x) => x.seq === got2[0]!.seq))
  await until('210', () => receipts.includes(210))

  // bob2 answers: bob1 sees it as a sent copy, to alice.
  const reply = await bob2.send('alice', 'answered from the phone')
  assert.equal(reply.status, 200)
  const copy = await until('the sent copy on bob1', () => got1.find((m) => m.text === 'answered from the phone'))
  assert.deepEqual([copy.sent, copy.from, copy.to, copy.fromName, copy.wantsReadReceipt], [true, bob1.id, alice.id, 'bob', false])
  assert.equal(
    got2.some((m) => m.text === 'answered from the phone'),
    false,
    'the sending device gets no copy',
  )
  await alice.send('bob', 'marker')
  await until('marker on bob2', () => got2.find((m) => m.text === 'marker'))
  assert.equal(receipts.filter((s) => s === 200).length, 2, 'one 200 per message (to every device, marker)')
  assert.equal(receipts.filter((s) => s === 210).length, 1, 'one 210')
})

test('history pages a conversation newest first, with sent copies, more and before; a topic; everything', async (t) => {
  const { port } = await startTestServer(t)
  const alice = await client(t, { port, name: 'alice' })
  const bob = await client(t, { port, name: 'bob' })
  inbox(alice)
  inbox(bob)
  await bob.subscribe('news')
  for (let i = 1; i <= 4; i++) await (i % 2 === 1 ? alice.send('bob', `m${i}`) : bob.send('alice', `m${i}`))
  await alice.send({ kind: 'topic', topic: 'news' }, 'headline')

  const first = await alice.history({ with: 'bob', limit: 3 })
  assert.deepEqual(
    first.messages.map((m) => [m.text, m.sent]),
    [
      ['m4', false],
      ['m3', true],
      ['m2', false],
    ],
  )
  assert.equal(first.more, true)
  assert.equal(first.messages[1]!.to, bob.id, "a sent copy's to is the recipient")
  const rest = await alice.history({ with: bob.id, before: first.messages.at(-1)!.seq })
  assert.deepEqual(
    rest.messages.map((m) => m.text),
    ['m1'],
  )
  assert.equal(rest.more, false)
  const topic = await alice.history({ with: { topic: 'news' } })
  assert.deepEqual(
    topic.messages.map((m) => [m.text, m.sent, m.topic]),
    [['headline', true, 'news']],
  )
  const everything = await bob.history()
  assert.deepEqual(
    everything.messages.map((m) => m.text),
    ['headline', 'm4', 'm3', 'm2', 'm1'],
  )
  await assert.rejects(alice.history({ with: 'nobody' }), (e: SwitchboardError) => e.code === 'SB_ERR_UNKNOWN_RECIPIENT')
})

test('revokeDevice ends the other device for good (closed, reason revoked); a send-only client leaves the device session alone and gets no messages', async (t) => {
  const { port } = await startTestServer(t)
  const alice = await client(t, { port, name: 'alice' })
  inbox(alice)
  const laptop = await client(t, { port, name: 'carol' })
  const laptopGot = inbox(laptop)
  await laptop.setPassword(PASSWORD)
  const phone = await client(t, { port, name: 'carol', password: PASSWORD })
  const closed = new Promise<ClosedEvent>((res) => phone.once('closed', res))
  const phoneDevice = (await phone.devices()).find((d) => d.current)!.id
  await laptop.revokeDevice(phoneDevice)
  assert.equal((await closed).reason, 'revoked')
  assert.equal(phone.connected, false)
  await assert.rejects(laptop.revokeDevice(phoneDevice), (e: SwitchboardError) => e.code === 'SB_ERR_UNKNOWN_DEVICE')
  await assert.rejects(
    SwitchboardClient.connect({ port, name: 'carol', id: phone.id, token: phone.token, reconnect: false }),
    (e: SwitchboardError) => e.code === 'SB_ERR_AUTH',
  )

  // A one-shot beside the laptop's session, with the laptop's own token.
  const oneShot = await SwitchboardClient.connect({
    port,
    name: 'carol',
    id: laptop.id,
    token: laptop.token,
    sendOnly: true,
    reconnect: false,
  })
  const oneShotGot = inbox(oneShot)
  assert.equal((await oneShot.send('alice', 'from a script')).status, 200)
  await alice.send('carol', 'for the laptop')
  await until('the laptop got it', () => laptopGot.find((m) => m.text === 'for the laptop'))
  await oneShot.whoami()
  assert.deepEqual(oneShotGot, [])
  await oneShot.close(200)
  assert.equal(laptop.connected, true, 'the send-only client replaced nothing')
})
