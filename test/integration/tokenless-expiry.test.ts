/**
 * Squatting through a gateway (issue 13 item 8), over a real server: a tokenless name (a 004 login) is shown as
 * such in who, is not permanent (after --legacy-identity-ttl without a login it goes, with its queue, and the
 * senders that asked are told 404), and a native registration can then take the name.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestServer } from '../helpers/server.js'
import { NativeClient, registered } from '../helpers/native-client.js'
import { RawClient } from '../helpers/gateway-fixture.js'
import { decodeServer, encodeClient, type ServerMessage } from '../../src/protocols/p004/codec.js'
import { PROTOCOL_VERSION, SendFlag } from '../../src/protocols/native/frames.js'
import { errorCodeFromNumber } from '../../src/core/errors.js'
import { SwitchboardClient } from '../../src/client/index.js'

const TTL = 1500

test('a tokenless 004 name is flagged in who, expires after the TTL with its queue (senders told 404), and can then be registered', async (t) => {
  const { server, port } = await startTestServer(t, { p004Port: 0, httpPort: 0, legacyIdentityTtl: TTL })
  const base = `http://127.0.0.1:${server.port('http')}`

  const squat = await RawClient.connect(t, server.port('p004'))
  squat.write(encodeClient({ kind: 'login', name: 'squat', utcOffsetSeconds: 0 }))
  const welcome = await squat.next<ServerMessage>((b) => decodeServer(b))
  assert.equal(welcome.kind === 'welcome' || welcome.kind === 'notice' ? welcome.text.slice(0, 9) : welcome.kind, 'Commands:')

  // who over HTTP: the 004 name is tokenless, the registered one is not.
  const reg = await fetch(`${base}/v1/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'watcher' }),
  })
  const watcher = (await reg.json()) as { token: string }
  const who = (await (await fetch(`${base}/v1/who`, { headers: { authorization: `Bearer ${watcher.token}` } })).json()) as {
    users: { name: string; tokenless?: boolean }[]
  }
  assert.equal(who.users.find((u) => u.name === 'squat')?.tokenless, true, JSON.stringify(who))
  assert.equal(who.users.find((u) => u.name === 'watcher')?.tokenless, undefined)

  // The SDK's who() says so too.
  const sdk = await SwitchboardClient.connect({ port, name: 'sdkuser' })
  t.after(() => sdk.close(200))
  const sdkWho = await sdk.who()
  assert.equal(sdkWho.find((u) => u.name === 'squat')?.tokenless, true)
  assert.equal(sdkWho.find((u) => u.name === 'sdkuser')?.tokenless, undefined)

  // While it is used, the name stays its holder's.
  const n = await NativeClient.connect(port, t)
  const taken = await n.request({ type: 'REGISTER', version: PROTOCOL_VERSION, flags: 0, name: 'squat' })
  assert.ok(taken.type === 'ERROR' && errorCodeFromNumber(taken.code) === 'SB_ERR_NAME_TAKEN', JSON.stringify(taken))

  // The native sender's SERVER who says so too.
  const alice = await registered(t, port, 'alice')
  await alice.say({ kind: 'server' }, 'who')
  const list = await alice.next('DELIVER')
  assert.match(list.msg.body.toString(), /squat #\d+ \(p004, no token\)/)

  squat.socket.destroy()
  // Wait until the server has seen it leave (a condition, asked every 20 ms, with a deadline).
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
  const online = async (): Promise<boolean> => {
    const r = (await (await fetch(`${base}/v1/who`, { headers: { authorization: `Bearer ${watcher.token}` } })).json()) as {
      users: { name: string }[]
    }
    return r.users.some((u) => u.name === 'squat')
  }
  for (const until = Date.now() + 5000; await online(); await sleep(20)) assert.ok(Date.now() < until, 'squat still online')
  await alice.say({ kind: 'name', name: 'squat' }, 'for whoever is squat', { msgId: 77, flags: SendFlag.RECEIPT })
  assert.equal((await alice.next('RECEIPT')).status, 202, 'stored: squat is offline')
  const gone = await alice.next('RECEIPT', TTL + 5000)
  assert.equal(gone.status, 404, 'the queue went with the identity, and the sender is told')
  assert.equal(gone.msgId, 77)

  const claimant = await registered(t, port, 'Squat')
  assert.equal(claimant.name, 'Squat')
  const after = await alice.say({ kind: 'name', name: 'Squat' }, 'hello')
  assert.equal(after.type, 'ACCEPTED')
  assert.equal((await claimant.next('DELIVER')).msg.body.toString(), 'hello', 'the old queue did not pass to the new owner')
})
