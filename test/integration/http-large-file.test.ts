/**
 * A 100 MiB file over HTTP: streamed up (never built in memory), downloaded, the download cut off partway
 * and resumed with a Range request from where it stopped; the two parts hash to the upload's SHA-256.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import http from 'node:http'
import { Readable } from 'node:stream'
import { startFixture } from './http-fixture.js'

const SIZE = 100 * 1024 * 1024
const CHUNK = 1024 * 1024

/** Deterministic content, generated chunk by chunk. */
function chunkAt(i: number): Buffer {
  const b = Buffer.alloc(CHUNK)
  for (let j = 0; j < CHUNK; j += 4) b.writeUInt32LE((i * CHUNK + j) >>> 0, j)
  return b
}

test('a 100 MiB download is resumed with a Range request after the connection drops', { timeout: 120_000 }, async (t) => {
  const f = await startFixture(t, { files: true, limits: { maxFileBytes: 200 * 1024 * 1024 } })
  const a = await f.register('alice')
  const b = await f.register('bob')

  const hash = createHash('sha256')
  const source = Readable.from(
    (function* () {
      for (let i = 0; i < SIZE / CHUNK; i++) {
        const c = chunkAt(i)
        hash.update(c)
        yield c
      }
    })(),
  )
  const up = await fetch(`${f.base}/v1/files?to=bob&name=big.bin&size=${SIZE}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${a.token}`, 'content-type': 'application/octet-stream' },
    body: Readable.toWeb(source) as ReadableStream,
    duplex: 'half',
  } as RequestInit)
  const sent = (await up.json()) as { fileId: string; sha256: string; size: number }
  assert.equal(up.status, 201, JSON.stringify(sent))
  const sha = hash.digest('hex')
  assert.equal(sent.sha256, sha)
  assert.equal(sent.size, SIZE)

  // First attempt: read about 40 MiB, then drop the connection.
  const got = createHash('sha256')
  let have = 0
  await new Promise<void>((resolve, reject) => {
    const req = http.get(`${f.base}/v1/files/${sent.fileId}`, { headers: { authorization: `Bearer ${b.token}` } }, (res) => {
      assert.equal(res.statusCode, 200)
      assert.equal(res.headers['content-length'], String(SIZE))
      res.on('data', (d: Buffer) => {
        if (have >= 40 * 1024 * 1024) return
        got.update(d)
        have += d.length
        if (have >= 40 * 1024 * 1024) {
          req.destroy()
          resolve()
        }
      })
      res.on('error', () => resolve())
      res.on('end', () => reject(new Error('the whole file came; the test meant to cut it')))
    })
    req.on('error', () => resolve())
  })
  assert.ok(have >= 40 * 1024 * 1024 && have < SIZE, `cut after ${have} bytes`)

  // Resume from the first byte not yet received.
  const rest = await fetch(`${f.base}/v1/files/${sent.fileId}`, {
    headers: { authorization: `Bearer ${b.token}`, range: `bytes=${have}-`, 'if-range': `"${sha}"` },
  })
  assert.equal(rest.status, 206)
  assert.equal(rest.headers.get('content-range'), `bytes ${have}-${SIZE - 1}/${SIZE}`)
  let more = 0
  for await (const d of rest.body as unknown as AsyncIterable<Uint8Array>) {
    got.update(d)
    more += d.length
  }
  assert.equal(have + more, SIZE)
  assert.equal(got.digest('hex'), sha, 'the two parts together are the file')
})
