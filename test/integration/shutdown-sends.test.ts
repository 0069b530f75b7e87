/**
 * SIGTERM during a stream of sends (issue 13 item 12), on a real server process: every SEND the server read is
 * answered before the connection closes, ACCEPTED for what was committed and SB_ERR_SHUTTING_DOWN for what was
 * not. Checked after a restart by resending each message with IDEMPOTENT: the store's dedupe key says
 * `duplicate` exactly for those that were committed.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnServer, type SpawnedServer } from '../../scripts/spawn-server.js'
import { NativeClient } from '../helpers/native-client.js'
import { SendFlag, SendStatusCode } from '../../src/protocols/native/frames.js'
import { errorCodeFromNumber } from '../../src/core/errors.js'

const HTTP_LINE = /http\S*\s+listening on \S*:(\d+)/

async function serve(dataDir: string): Promise<SpawnedServer & { httpPort: number }> {
  let out = ''
  let httpPort = 0
  const s = await spawnServer(
    ['--port', '0', '--http-port', '0', '--data-dir', dataDir, '--log-level', 'warn', '--log-format', 'json'],
    {
      timeoutMs: 60_000,
      onStdout: (d) => {
        out += d.toString()
        httpPort ||= Number(HTTP_LINE.exec(out)?.[1] ?? 0)
      },
    },
  )
  await new Promise<void>((resolve) => {
    const check = (): void => (httpPort !== 0 ? resolve() : void s.child.stdout!.once('data', () => setImmediate(check)))
    check()
  })
  return { ...s, httpPort }
}

function withServer(t: TestContext) {
  const dataDir = mkdtempSync(join(tmpdir(), 'sb-term-'))
  const running: SpawnedServer[] = []
  t.after(async () => {
    for (const s of running)
      if (s.child.exitCode === null && s.child.signalCode === null) {
        s.child.kill('SIGKILL')
        await s.exited
      }
    rmSync(dataDir, { recursive: true, force: true })
  })
  return {
    start: async () => {
      const s = await serve(dataDir)
      running.push(s)
      return s
    },
  }
}

/** Resend each msgId with IDEMPOTENT after the restart: which ones had been committed before the stop? */
async function committedBefore(port: number, token: string, id: number, msgIds: number[]): Promise<Set<number>> {
  const c = await NativeClient.connect(port)
  try {
    await c.login({ id }, token)
    const corrs = new Map<number, number>()
    for (const msgId of msgIds)
      corrs.set(c.sendText({ kind: 'name', name: 'bob' }, `m${msgId}`, { msgId, flags: SendFlag.IDEMPOTENT }), msgId)
    const out = new Set<number>()
    for (const [corr, msgId] of corrs) {
      const f = await c.next((x) => x.corr === corr, 20_000, `the answer to the resend of ${msgId}`)
      assert.equal(f.type, 'ACCEPTED', JSON.stringify(f))
      if (f.type === 'ACCEPTED' && f.status === SendStatusCode.duplicate) out.add(msgId)
    }
    return out
  } finally {
    c.destroy()
  }
}

test(
  'native: SIGTERM mid-stream answers every SEND read: ACCEPTED for what was committed, SB_ERR_SHUTTING_DOWN for the rest',
  { timeout: 150_000 },
  async (t) => {
    const srv = withServer(t)
    const first = await srv.start()
    const bob = await NativeClient.connect(first.port)
    await bob.register('bob')
    bob.destroy() // offline: messages to bob are stored
    const alice = await NativeClient.connect(first.port)
    await alice.register('alice')

    // corr → msgId, for every SEND written; answers by msgId.
    const sent = new Map<number, number>()
    const accepted = new Set<number>()
    const refused = new Set<number>()
    const otherErrors: string[] = []
    let msgId = 0
    let signalled = false
    // A stream: up to 256 SENDs unanswered at a time, 4000 at most.
    const pump = (): void => {
      // A client stops sending when told the server stops (SB_ERR_SHUTTING_DOWN or CLOSING).
      if (alice.isClosed || msgId >= 4000 || refused.size > 0 || alice.received.at(-1)?.type === 'CLOSING') return
      const outstanding = msgId - accepted.size - refused.size - otherErrors.length
      const n = Math.min(64, 256 - outstanding)
      for (let i = 0; i < n; i++) {
        msgId++
        sent.set(alice.sendText({ kind: 'name', name: 'bob' }, `m${msgId}`, { msgId, flags: SendFlag.IDEMPOTENT }), msgId)
      }
      if (n === 64) setImmediate(pump) // else the next answers call it
    }
    alice.socket.on('data', () => {
      for (const f of alice.take('ACCEPTED')) accepted.add(sent.get(f.corr)!)
      for (const f of alice.take('ERROR')) {
        const code = errorCodeFromNumber(f.code)
        if (code === 'SB_ERR_SHUTTING_DOWN') refused.add(sent.get(f.corr)!)
        else otherErrors.push(`${code} ${f.message}`)
      }
      if (!signalled && accepted.size >= 500) {
        signalled = true
        first.child.kill('SIGTERM')
      }
      pump()
    })
    pump()
    await alice.closed
    await first.exited
    for (const f of alice.take('ACCEPTED')) accepted.add(sent.get(f.corr)!)
    for (const f of alice.take('ERROR'))
      if (errorCodeFromNumber(f.code) === 'SB_ERR_SHUTTING_DOWN') refused.add(sent.get(f.corr)!)
    assert.ok(signalled, 'the server was stopped mid-stream')
    assert.deepEqual(otherErrors, [])
    const closing = alice.received.find((f) => f.type === 'CLOSING')
    assert.equal(closing?.type === 'CLOSING' ? closing.reason : undefined, 'shutdown', alice.summary().slice(-200))
    const last = alice.received.at(-1)
    assert.equal(last?.type, 'CLOSING', 'CLOSING comes after every answer')

    const second = await srv.start()
    const committed = await committedBefore(second.port, alice.token, alice.id, [...sent.values()])
    const unanswered = [...sent.values()].filter((m) => !accepted.has(m) && !refused.has(m))
    assert.deepEqual(
      [...committed].filter((m) => !accepted.has(m)),
      [],
      `committed but not answered ACCEPTED (of ${accepted.size} accepted, ${refused.size} refused, ${unanswered.length} unanswered)`,
    )
    assert.deepEqual(
      [...accepted].filter((m) => !committed.has(m)),
      [],
      'ACCEPTED but not committed',
    )
    assert.deepEqual(
      [...refused].filter((m) => committed.has(m)),
      [],
      'SB_ERR_SHUTTING_DOWN but committed',
    )
    t.diagnostic(
      `${sent.size} sent, ${accepted.size} accepted, ${refused.size} refused while stopping, ${unanswered.length} sent and not read before the server closed`,
    )
  },
)

test(
  'HTTP: SIGTERM during concurrent POST /v1/messages: each request answered is either accepted and committed, or 503 SB_ERR_SHUTTING_DOWN and not',
  { timeout: 150_000 },
  async (t) => {
    const srv = withServer(t)
    const first = await srv.start()
    const base = `http://127.0.0.1:${first.httpPort}`
    const post = async (path: string, body: unknown, token?: string) => {
      const r = await fetch(base + path, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify(body),
      })
      return { status: r.status, body: (await r.json()) as any }
    }
    const bob = await NativeClient.connect(first.port)
    await bob.register('bob')
    bob.destroy()
    const reg = await post('/v1/register', { name: 'alice' })
    assert.equal(reg.status, 201)
    const alice = reg.body as { id: number; token: string }
    // The REST token is "<id>.<secret>"; the secret logs in over the native protocol, for the check after the restart.
    const secret = alice.token.slice(alice.token.indexOf('.') + 1)

    const accepted = new Set<number>()
    const refused = new Set<number>()
    const failed = new Set<number>()
    const other: string[] = []
    let next = 0
    let signalled = false
    const worker = async (): Promise<void> => {
      for (;;) {
        const msgId = ++next
        if (msgId > 4000) return
        try {
          const r = await post('/v1/messages', { to: 'bob', text: `m${msgId}`, msgId, idempotent: true }, alice.token)
          if (r.status === 200 || r.status === 201 || r.status === 202) accepted.add(msgId)
          else if (r.status === 503 && r.body.code === 'SB_ERR_SHUTTING_DOWN') refused.add(msgId)
          else other.push(`${r.status} ${JSON.stringify(r.body)}`)
        } catch {
          failed.add(msgId) // no answer: the connection was refused or closed
          return
        }
        if (!signalled && accepted.size >= 300) {
          signalled = true
          first.child.kill('SIGTERM')
        }
      }
    }
    await Promise.all(Array.from({ length: 8 }, () => worker()))
    await first.exited
    assert.ok(signalled)
    assert.deepEqual(other, [])

    const second = await srv.start()
    const all = [...accepted, ...refused, ...failed]
    const committed = await committedBefore(second.port, secret, alice.id, all)
    assert.deepEqual(
      [...accepted].filter((m) => !committed.has(m)),
      [],
      'answered as accepted but not committed',
    )
    assert.deepEqual(
      [...committed].filter((m) => !accepted.has(m)),
      [],
      `committed without an answer saying so (${refused.size} refused, ${failed.size} without an answer)`,
    )
    t.diagnostic(`${accepted.size} accepted, ${refused.size} refused while stopping, ${failed.size} without an answer`)
  },
)
