/**
 * Issue 13 item 11: a full disk, for real. The data directory is a 4 MiB tmpfs; a file fills what is left; SEND and
 * REGISTER are refused with SB_ERR_STORAGE_FULL (not "internal error"), /healthz answers 503 "full", and once the
 * filler is removed both work again by themselves, and every message that was accepted is delivered (and no other).
 * Needs root (mount); without it the test says so and is skipped.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startTestServer } from '../helpers/server.js'
import { NativeClient, loggedIn, registered } from '../helpers/native-client.js'
import { ErrorNumbers } from '../../src/core/errors.js'
import type { FrameOf } from '../../src/protocols/native/frames.js'

const to = (name: string) => ({ kind: 'name' as const, name })

/** Write to `file` until the file system refuses (ENOSPC), in ever smaller pieces, so that not a page is left. */
function fill(file: string): number {
  const fd = openSync(file, 'a')
  let written = 0
  try {
    for (const size of [256 * 1024, 4096, 1]) {
      const chunk = Buffer.alloc(size, 0x55)
      for (;;) {
        try {
          written += writeSync(fd, chunk)
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err
          break
        }
      }
    }
  } finally {
    closeSync(fd)
  }
  return written
}

function mountTmpfs(dir: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir], { stdio: 'pipe' })
    return true
  } catch {
    return false
  }
}

test('disk full: SB_ERR_STORAGE_FULL, /healthz 503 full, then recovery by itself with nothing lost', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-full-'))
  if (!mountTmpfs(dir)) {
    rmSync(dir, { recursive: true, force: true })
    t.skip('cannot mount a tmpfs here (needs root)')
    return
  }
  const srv = await startTestServer(t, { httpPort: 0 }, { dataDir: dir })
  t.after(async () => {
    await srv.stop()
    execFileSync('umount', [dir])
    rmSync(dir, { recursive: true, force: true })
  })
  const health = async (): Promise<{ status: number; body: Record<string, unknown> }> => {
    const r = await fetch(`http://127.0.0.1:${srv.server.port('http')}/healthz`)
    return { status: r.status, body: (await r.json()) as Record<string, unknown> }
  }
  assert.equal((await health()).status, 200)

  const alice = await registered(t, srv.port, 'alice')
  const bob = await registered(t, srv.port, 'bob')
  const bobCred = { id: bob.id, token: bob.token }
  bob.destroy()
  await bob.closed

  // Fill the disk, then send 32 KiB messages to the offline bob until one is refused.
  const filler = join(dir, 'filler')
  assert.ok(fill(filler) > 0)
  const body = (i: number) => Buffer.concat([Buffer.from(`#${i}#`), Buffer.alloc(32 * 1024, 0x61 + (i % 26))])
  const accepted: number[] = []
  let refused: FrameOf<'ERROR'> | undefined
  for (let i = 1; i <= 400 && refused === undefined; i++) {
    const f = await alice.say(to('bob'), body(i), { msgId: i })
    if (f.type === 'ACCEPTED') accepted.push(i)
    else refused = f as FrameOf<'ERROR'>
  }
  assert.ok(refused !== undefined, 'a full 4 MiB disk refused none of 400 messages of 32 KiB')
  assert.equal(refused.code, ErrorNumbers.SB_ERR_STORAGE_FULL, `${refused.code} ${refused.message}`)
  assert.match(refused.message, /storage is full/)
  assert.doesNotMatch(refused.message, new RegExp(dir), 'the data directory is for the log, not the client')
  // Whatever room the refused write's rollback left is taken too: the disk stays full.
  fill(filler)

  const carol = await NativeClient.connect(srv.port, t)
  const reg = await carol.request({ type: 'REGISTER', version: 1, name: 'carol', flags: 0 })
  assert.equal(reg.type, 'ERROR', `REGISTER on a full disk: ${JSON.stringify(reg)}`)
  assert.equal((reg as FrameOf<'ERROR'>).code, ErrorNumbers.SB_ERR_STORAGE_FULL)

  const sick = await health()
  assert.equal(sick.status, 503)
  assert.equal(sick.body.status, 'fail')
  assert.equal(sick.body.store, 'full')
  assert.match(String(sick.body.detail), /storage is full/)

  // Space returns: the store writes again without a restart.
  unlinkSync(filler)
  const well = await health()
  assert.equal(well.status, 200, JSON.stringify(well.body))
  assert.equal(well.body.store, 'ok')
  const after = await alice.say(to('bob'), body(1000), { msgId: 1000 })
  assert.equal(after.type, 'ACCEPTED', JSON.stringify(after))
  accepted.push(1000)
  const reg2 = await carol.request({ type: 'REGISTER', version: 1, name: 'carol', flags: 0 })
  assert.equal(reg2.type, 'WELCOME', JSON.stringify(reg2))

  // Zero loss: bob gets every accepted message, in order, and not the refused one.
  const bob2 = await loggedIn(t, srv.port, bobCred)
  const got: number[] = []
  while (got.length < accepted.length) {
    const d = await bob2.next('DELIVER')
    got.push(Number(/^#(\d+)#/.exec(d.msg.body.subarray(0, 12).toString('latin1'))![1]))
    assert.equal(d.msg.body.length, body(got.at(-1)!).length)
    bob2.ack(d.msg.seq)
  }
  assert.deepEqual(got, accepted)
  // Nothing else comes before a marker sent after them (the refused message in particular).
  assert.equal((await alice.say(to('bob'), 'marker', { msgId: 2000 })).type, 'ACCEPTED')
  const isMarker = (f: { type: string; msg?: { body: Buffer } }) => f.type === 'DELIVER' && f.msg!.body.toString() === 'marker'
  assert.deepEqual(await bob2.before('DELIVER', isMarker), [])
})
