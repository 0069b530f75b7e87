/**
 * A process that writes blobs into an FsBlobStore, for the crash and fsync tests of
 * test/unit/store/fs-blob-store.test.ts (they kill it, or trace its system calls).
 *
 *   node --import tsx test/helpers/blob-writer-child.ts DIR once   one blob of 300 kB, then exit
 *   node --import tsx test/helpers/blob-writer-child.ts DIR loop   blobs without end, each announced on stdout
 *   node --import tsx test/helpers/blob-writer-child.ts DIR half   half a blob written, "half" on stdout, then wait
 *
 * Every blob's key is the SHA-256 of its content, so whoever finds a key can check the bytes under it.
 */
import { createHash } from 'node:crypto'
import { FsBlobStore } from '../../src/store/blob/fs-blob-store.js'

const [dir, mode] = process.argv.slice(2)
if (dir === undefined || (mode !== 'once' && mode !== 'loop' && mode !== 'half')) {
  process.stderr.write('usage: blob-writer-child.ts DIR once|loop|half\n')
  process.exit(2)
}
const store = new FsBlobStore({ dir })
await store.open()

/** Content i: 300 kB (varying a little) of bytes that depend on i. */
function content(i: number): Buffer {
  const b = Buffer.alloc(300_000 + (i % 7) * 1000)
  for (let j = 0; j < b.length; j++) b[j] = (i * 31 + j * 7) & 0xff
  return b
}

async function writeOne(i: number, commit: boolean): Promise<string> {
  const body = content(i)
  const key = createHash('sha256').update(body).digest('hex')
  const w = await store.create()
  for (let off = 0; off < body.length; off += 64 * 1024) await w.write(body.subarray(off, off + 64 * 1024))
  if (!commit) return key
  await w.seal()
  await w.commit(key)
  return key
}

if (mode === 'once') {
  process.stdout.write(`${await writeOne(0, true)}\n`)
} else if (mode === 'half') {
  const w = await store.create()
  await w.write(content(0).subarray(0, 100_000))
  process.stdout.write('half\n')
  setInterval(() => undefined, 1000) // wait to be killed
} else {
  for (let i = 0; ; i++) process.stdout.write(`${await writeOne(i, true)}\n`)
}
