/**
 * FsBlobStore on a real temp folder: content appears under its key only when committed and whole, a
 * process killed mid-write leaves no part of it under a key, the temporary file is fsynced before the
 * rename (observed with strace), and temporary files are swept by owner and age.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'
import { BlobKeyError } from '../../../src/store/blob/blob-store.js'
import { FsBlobStore } from '../../../src/store/blob/fs-blob-store.js'

const CHILD = join(import.meta.dirname, '../../helpers/blob-writer-child.ts')

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'sb-blobs-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

async function open(dir: string, shared = false): Promise<FsBlobStore> {
  const s = new FsBlobStore({ dir, shared })
  await s.open()
  return s
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

async function readAll(stream: Readable | undefined): Promise<Buffer> {
  assert.ok(stream, 'a stream')
  const parts: Buffer[] = []
  for await (const c of stream) parts.push(c as Buffer)
  return Buffer.concat(parts)
}

async function keys(s: FsBlobStore): Promise<string[]> {
  const out: string[] = []
  for await (const k of s.list()) out.push(k)
  return out.sort()
}

test('content is invisible under its key until commit, then whole; the temporary file is gone', async (t) => {
  const dir = tempDir(t)
  const s = await open(dir)
  const body = Buffer.alloc(500_000, 7)
  const key = sha(body)
  const w = await s.create()
  for (let off = 0; off < body.length; off += 64 * 1024) await w.write(body.subarray(off, off + 64 * 1024))
  assert.equal(readdirSync(join(dir, 'tmp')).length, 1, 'the bytes are in one temporary file')
  assert.equal(await s.has(key), false)
  await w.seal()
  assert.equal(await s.has(key), false, 'sealed is durable, not yet visible')
  assert.equal(await s.read(key, { start: 0, end: body.length - 1 }), undefined)
  assert.deepEqual(await keys(s), [])
  assert.equal(await w.commit(key), true)
  assert.deepEqual(await keys(s), [key])
  assert.deepEqual(readdirSync(join(dir, 'tmp')), [])
  assert.deepEqual(await readAll(await s.read(key, { start: 0, end: body.length - 1 })), body)
  assert.deepEqual(await readAll(await s.read(key, { start: 10, end: 19 })), body.subarray(10, 20))
  assert.deepEqual(await readAll(await s.read(key, { start: body.length, end: body.length - 1 })), Buffer.alloc(0))
  await w.abort() // after commit: nothing happens
  assert.equal(await s.has(key), true)
})

test('committing a key that holds content already drops the new copy and says so', async (t) => {
  const dir = tempDir(t)
  const s = await open(dir)
  const body = Buffer.from('same bytes')
  for (const expected of [true, false]) {
    const w = await s.create()
    await w.write(body)
    await w.seal()
    assert.equal(await w.commit(sha(body)), expected)
  }
  assert.deepEqual(await keys(s), [sha(body)])
  assert.deepEqual(readdirSync(join(dir, 'tmp')), [])
})

test('abort removes what was written, at any stage and more than once; an aborted writer refuses more', async (t) => {
  const dir = tempDir(t)
  const s = await open(dir)
  const w = await s.create()
  await w.write(Buffer.alloc(200_000))
  await w.abort()
  await w.abort()
  await assert.rejects(w.write(Buffer.from('x')), /aborted/)
  const sealed = await s.create()
  await sealed.write(Buffer.from('y'))
  await sealed.seal()
  await sealed.abort()
  await assert.rejects(sealed.commit(sha(Buffer.from('y'))), /aborted/)
  assert.deepEqual(readdirSync(join(dir, 'tmp')), [])
  assert.deepEqual(await keys(s), [])
})

test('delete and missing keys; a read begun before a delete completes', async (t) => {
  const dir = tempDir(t)
  const s = await open(dir)
  const body = Buffer.alloc(1_000_000, 3)
  const w = await s.create()
  await w.write(body)
  await w.seal()
  await w.commit(sha(body))
  const reading = await s.read(sha(body), { start: 0, end: body.length - 1 })
  assert.equal(await s.delete(sha(body)), true)
  assert.equal(await s.delete(sha(body)), false)
  assert.equal(await s.read(sha(body), { start: 0, end: 0 }), undefined)
  assert.deepEqual(await readAll(reading), body)
})

test('keys that are not plain names are refused before touching the folder', async (t) => {
  const s = await open(tempDir(t))
  for (const bad of ['', '../escape', 'a/b', 'UPPER', 'tmp', 'x'.repeat(129), 'a.part'])
    await assert.rejects(s.has(bad), BlobKeyError, bad)
  const w = await s.create()
  await w.write(Buffer.from('z'))
  await w.seal()
  assert.throws(() => s.path('../z'), BlobKeyError)
  await assert.rejects(w.commit('../z'), BlobKeyError)
  await w.abort()
})

test('sweepTemps keeps this process’s writers and other processes’ recent temporary files', async (t) => {
  const dir = tempDir(t)
  const s = await open(dir, true)
  const mine = await s.create()
  await mine.write(Buffer.from('in progress'))
  const fresh = join(dir, 'tmp', 'aaaa.part') // another node's upload, written a moment ago
  const stale = join(dir, 'tmp', 'bbbb.part') // a dead node's upload
  writeFileSync(fresh, 'x')
  writeFileSync(stale, 'x')
  const old = (Date.now() - 3_600_000) / 1000
  utimesSync(stale, old, old)
  assert.equal(await s.sweepTemps(60_000), 1)
  assert.ok(existsSync(fresh) && !existsSync(stale), 'the stale one went, the fresh one stays')
  assert.equal(readdirSync(join(dir, 'tmp')).length, 2, 'and so does this process’s writer')
  assert.equal(await s.sweepTemps(0), 1, 'with no age limit only its own writer stays')
  assert.equal(readdirSync(join(dir, 'tmp')).length, 1)
  await mine.abort()
})

/** Run the child writer; resolve with its process once it has printed `lines` lines. */
function startChild(dir: string, mode: string, lines: number) {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, mode], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
  const seen: string[] = []
  const ready = new Promise<string[]>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (l) => {
      seen.push(l)
      if (seen.length === lines) resolve(seen)
    })
    void exited.then((code) => reject(new Error(`the child exited (${code}) after ${seen.length} lines`)))
  })
  return { child, ready, exited }
}

test('a process killed mid-write leaves nothing under a key, and the next owner sweeps its temporary file', async (t) => {
  const dir = tempDir(t)
  const c = startChild(dir, 'half', 1)
  await c.ready
  c.child.kill('SIGKILL')
  await c.exited
  const s = await open(dir)
  assert.deepEqual(await keys(s), [], 'no key for a half-written blob')
  assert.equal(readdirSync(join(dir, 'tmp')).length, 1, 'the half is only in a temporary file')
  assert.equal(await s.sweepTemps(0), 1)
})

test('killed at any moment while committing blob after blob, every key holds exactly its content', async (t) => {
  const dir = tempDir(t)
  const c = startChild(dir, 'loop', 5)
  await c.ready
  c.child.kill('SIGKILL') // somewhere in the sixth blob: writing, sealing or renaming
  await c.exited
  const s = await open(dir)
  const found = await keys(s)
  assert.ok(found.length >= 5, `${found.length} blobs committed`)
  for (const k of found) {
    const b = readFileSync(join(dir, k))
    assert.equal(sha(b), k, 'the bytes under a key are the whole content')
  }
})

const strace = spawnSync('strace', ['-V']).status === 0 ? undefined : 'strace is not installed'

test('the temporary file is fsynced before the rename, and the folder after it (strace)', { skip: strace }, (t) => {
  const dir = tempDir(t)
  const trace = join(dir, '..', `${dir.split('/').pop()}.strace`)
  t.after(() => rmSync(trace, { force: true }))
  const r = spawnSync(
    'strace',
    [
      '-f',
      '-qq',
      '-e',
      'trace=open,openat,fsync,fdatasync,rename,renameat,renameat2',
      '-o',
      trace,
      process.execPath,
      '--import',
      'tsx',
      CHILD,
      dir,
      'once',
    ],
    { encoding: 'utf8' },
  )
  assert.equal(r.status, 0, r.stderr)
  const key = r.stdout.trim()
  // Join "<unfinished ...>" with its "<... resumed>" (threads interleave), keep the order of completion.
  const pending = new Map<string, string>()
  const calls: string[] = []
  for (const line of readFileSync(trace, 'utf8').split('\n')) {
    const m = /^(\d+)\s+(.*)$/.exec(line)
    if (m === null) continue
    const [, pid, rest] = m as unknown as [string, string, string]
    if (rest.endsWith('<unfinished ...>')) pending.set(pid, rest.slice(0, -'<unfinished ...>'.length))
    else if (rest.startsWith('<...')) {
      calls.push((pending.get(pid) ?? '') + rest.replace(/^<\.\.\. \w+ resumed>/, ''))
      pending.delete(pid)
    } else calls.push(rest)
  }
  const fdOf = (pathPart: string, after = 0): Map<string, number> => {
    const fds = new Map<string, number>()
    calls.forEach((c, i) => {
      const m = /^open(?:at)?\(.*"([^"]+)".*=\s*(\d+)$/.exec(c)
      if (m !== null && i >= after && m[1]!.includes(pathPart)) fds.set(m[2]!, i)
    })
    return fds
  }
  const renameAt = calls.findIndex((c) => /^rename/.test(c) && c.includes(`/tmp/`) && c.includes(`${dir}/${key}"`))
  assert.ok(renameAt > 0, `a rename of the temporary file to ${key}`)
  const tmpName = /"([^"]*\.part)"/.exec(calls[renameAt]!)![1]!
  /** Is there a successful fsync, between `from` and `to`, of an fd opened (before it) on the path? */
  const synced = (fds: Map<string, number>, from: number, to: number): boolean =>
    calls.slice(from, to).some((c, k) => {
      const m = /^f(?:data)?sync\((\d+)\)\s*=\s*0$/.exec(c)
      const opened = m === null ? undefined : fds.get(m[1]!)
      return opened !== undefined && opened < from + k
    })
  assert.ok(synced(fdOf(tmpName), 0, renameAt), 'fsync of the temporary file before the rename')
  const dirFds = new Map([...fdOf(dir, renameAt)].filter(([, i]) => calls[i]!.includes(`"${dir}"`)))
  assert.ok(synced(dirFds, renameAt, calls.length), 'fsync of the folder after the rename')
})
