/**
 * What the other native suites leave out: a scheduled message that survives a restart before its time,
 * and the native protocol over TLS.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import tls from 'node:tls'
import { startTestServer } from '../helpers/server.js'
import { isText, loggedIn, registered } from '../helpers/native-client.js'
import { until } from '../helpers/wait.js'
import { Op, SendStatusCode, PROTOCOL_VERSION, type FrameOf } from '../../src/protocols/native/frames.js'
import { encode, FrameReader } from '../../src/protocols/native/codec.js'
import type { Frame } from '../../src/protocols/native/frames.js'

test('a scheduled message is held across a restart and delivered on time after it', async (t) => {
  const first = await startTestServer(t)
  const alice = await registered(t, first.port, 'alice')
  const bob = await registered(t, first.port, 'bob')
  const notBefore = Date.now() + 2500
  const a = await alice.say({ kind: 'name', name: 'bob' }, 'see you after the restart', { msgId: 7, notBefore })
  assert.equal(a.type, 'ACCEPTED')
  assert.equal(a.type === 'ACCEPTED' && a.status, SendStatusCode.scheduled)
  const bobCred = { id: bob.id, token: bob.token }
  await first.stop()

  const second = await startTestServer(t, {}, { dataDir: first.dataDir })
  const bob2 = await loggedIn(t, second.port, bobCred)
  const carol = await registered(t, second.port, 'carol')
  assert.equal((await carol.say({ kind: 'name', name: 'bob' }, 'marker')).type, 'ACCEPTED')
  assert.deepEqual(await bob2.before('DELIVER', isText('marker')), [], 'not before its time')
  const d = await bob2.next('DELIVER', 5000)
  const at = Date.now()
  assert.equal(d.msg.body.toString(), 'see you after the restart')
  assert.equal(d.msg.fromName, 'alice')
  assert.ok(at >= notBefore, `delivered ${notBefore - at} ms early`)
  assert.ok(at - notBefore < 2500, `delivered ${at - notBefore} ms late (the reaper releases every second)`)
})

test('the native protocol over TLS: register, send and receive', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-tls-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const key = join(dir, 'key.pem')
  const cert = join(dir, 'cert.pem')
  try {
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'],
      { stdio: 'ignore' },
    )
  } catch (err) {
    if (process.env.CI === 'true') throw err
    t.skip('openssl is not installed')
    return
  }
  const { server, port } = await startTestServer(t, { tlsKey: key, tlsCert: cert })
  assert.equal(server.listeners[0]!.name, 'native+tls')

  const connect = (name: string) =>
    new Promise<{ send(f: Frame): void; next(type: Frame['type']): Promise<Frame>; socket: tls.TLSSocket }>((resolve, reject) => {
      const socket = tls.connect({ port, host: '127.0.0.1', ca: readFileSync(cert), servername: 'localhost' }, () => {
        const reader = new FrameReader(1 << 20)
        const inbox: Frame[] = []
        const waiting: { type: string; resolve: (f: Frame) => void }[] = []
        socket.on('data', (chunk: Buffer) => {
          for (const d of reader.push(chunk)) {
            if (!d.ok) continue
            const i = waiting.findIndex((w) => w.type === d.frame.type)
            if (i >= 0) waiting.splice(i, 1)[0]!.resolve(d.frame)
            else inbox.push(d.frame)
          }
        })
        const c = {
          socket,
          send: (f: Frame) => socket.write(encode(f)),
          next: (type: Frame['type']) =>
            new Promise<Frame>((res) => {
              const i = inbox.findIndex((f) => f.type === type)
              if (i >= 0) res(inbox.splice(i, 1)[0]!)
              else waiting.push({ type, resolve: res })
            }),
        }
        c.send({ type: 'REGISTER', corr: 1, version: PROTOCOL_VERSION, flags: 0, name })
        resolve(c)
      })
      socket.once('error', reject)
      t.after(() => socket.destroy())
    })
  const alice = await connect('alice')
  const bob = await connect('bob')
  assert.equal((await alice.next('WELCOME')).type, 'WELCOME')
  assert.equal((await bob.next('WELCOME')).type, 'WELCOME')
  assert.ok(alice.socket.encrypted, 'the connection is encrypted')
  alice.send({
    type: 'SEND',
    corr: 2,
    msgId: 1,
    to: { kind: 'name', name: 'bob' },
    kind: 0,
    flags: 0,
    ttlMs: 0,
    notBefore: 0,
    body: Buffer.from('over tls'),
  })
  assert.equal((await alice.next('ACCEPTED')).type, 'ACCEPTED')
  const d = await bob.next('DELIVER')
  assert.equal(d.type === 'DELIVER' && d.msg.body.toString(), 'over tls')
})

test('last seen: online users show their last request, offline users when their session ended, across a restart', async (t) => {
  const first = await startTestServer(t)
  const alice = await registered(t, first.port, 'alice')
  const bob = await registered(t, first.port, 'bob')
  const carol = await registered(t, first.port, 'carol')
  const seen = async (c: typeof alice, name: string) => {
    const r = await c.request({ type: 'REQUEST', op: Op.LAST_SEEN, arg: name })
    assert.equal(r.type, 'RESULT', JSON.stringify(r))
    return r as FrameOf<'RESULT'>
  }
  const online = await seen(alice, 'bob')
  assert.equal(online.text, 'online')
  assert.equal(online.users[0]!.name, 'bob')
  assert.equal(online.users[0]!.protocol, 'native')
  assert.ok(online.users[0]!.lastSeen > 0)

  const before = Date.now()
  bob.send({ type: 'BYE' })
  await bob.closed
  const offline = await until('bob to be offline', async () => {
    const r = await seen(alice, 'bob')
    return r.text === 'offline' && r
  })
  assert.equal(offline.text, 'offline')
  assert.equal(offline.users[0]!.protocol, '')
  const at = offline.users[0]!.lastSeen
  assert.ok(at > 0 && at <= Date.now() && at >= before - 5000, `last seen ${at}`)

  // A user who blocked you is, to you, no such user.
  await carol.expect({ type: 'REQUEST', op: Op.BLOCK, arg: 'alice' }, 'RESULT')
  const blocked = await alice.request({ type: 'REQUEST', op: Op.LAST_SEEN, arg: 'carol' })
  assert.equal(blocked.type, 'ERROR')

  const aliceCred = { id: alice.id, token: alice.token }
  await first.stop()
  const second = await startTestServer(t, {}, { dataDir: first.dataDir })
  const alice2 = await loggedIn(t, second.port, aliceCred)
  const after = await seen(alice2, 'bob')
  assert.equal(after.text, 'offline')
  assert.equal(after.users[0]!.lastSeen, at, 'kept across the restart')
})
