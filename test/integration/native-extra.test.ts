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
import { loggedIn, registered } from '../helpers/native-client.js'
import { SendStatusCode, PROTOCOL_VERSION } from '../../src/protocols/native/frames.js'
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
  assert.deepEqual(await bob2.collect('DELIVER', 500), [], 'not before its time')
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
