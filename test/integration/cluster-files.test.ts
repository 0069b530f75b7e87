/**
 * Files in a cluster: the metadata in PostgreSQL (PostgresFileMeta), the bytes in one folder every node
 * shares. A file uploaded through node A is announced to a user on node B, who downloads it through B.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FileService, decodeFileMessage } from '../../src/core/files.js'
import { FsBlobStore } from '../../src/store/blob/fs-blob-store.js'
import { PostgresFileMeta } from '../../src/store/postgres/postgres-file-meta.js'
import type { Outbound } from '../../src/core/types.js'
import { Cluster, FakeSink, clusterServicesUnavailable, ready } from './cluster-fixture.js'

const unavailable = await clusterServicesUnavailable()

describe('cluster: files shared through PostgreSQL and one folder', { skip: unavailable }, () => {
  let cluster: Cluster
  const dir = mkdtempSync(join(tmpdir(), 'sb-cluster-files-'))
  const services: FileService[] = []
  before(async () => {
    cluster = await new Cluster({ nodes: 2 }).start()
    for (const n of cluster.nodes) {
      const fs = new FileService({
        blobs: new FsBlobStore({ dir, shared: true }),
        meta: new PostgresFileMeta(n.postgres),
        broker: n.broker,
      })
      await fs.start()
      services.push(fs)
    }
  })
  after(async () => {
    for (const s of services) await s.close()
    await cluster?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('uploaded on node A, announced to a user on node B, downloaded on B; a stranger is refused; gc after retention', async () => {
    const [A, B] = [cluster.node(0).broker, cluster.node(1).broker]
    const [fa, fb] = [services[0]!, services[1]!]
    const alice = await ready(A, A.register('alice', 'test', new FakeSink()))
    const bobSink = new FakeSink()
    const bob = await ready(B, B.register('bob', 'test', bobSink))
    const carol = await ready(B, B.register('carol', 'test', new FakeSink()))

    const data = Buffer.alloc(300_000)
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff
    const sha = createHash('sha256').update(data).digest('hex')
    const up = await fa.beginUpload(alice.session, {
      name: 'shared.bin',
      size: data.length,
      sha256: sha,
      to: { kind: 'name', name: 'bob' },
    })
    for (let i = 0; i < data.length; i += 65536) await up.write(data.subarray(i, i + 65536))
    const done = await up.finish()
    assert.equal(done.sha256, sha)
    assert.deepEqual(
      readdirSync(dir).filter((f) => f !== 'tmp'),
      [sha],
      'stored once in the shared folder',
    )

    const ev = await bobSink.waitFor('the file message on B', (e: Outbound) => e.type === 'message' && e.msg.kind === 'file')
    assert.ok(ev.type === 'message')
    const meta = decodeFileMessage(ev.msg.body)
    assert.equal(meta?.fileId, done.fileId)

    const d = await fb.openDownload(bob.session, done.fileId)
    const chunks: Buffer[] = []
    for await (const c of d.stream as AsyncIterable<Buffer>) chunks.push(c)
    assert.equal(createHash('sha256').update(Buffer.concat(chunks)).digest('hex'), sha)

    await assert.rejects(
      fb.openDownload(carol.session, done.fileId),
      (e: Error & { code?: string }) => e.code === 'SB_ERR_FORBIDDEN',
    )

    // Acknowledged, the message stays in bob's log (and alice's sent copy in hers), and so does the file; once the
    // log's retention removed them and the file retention is over, a gc on either node removes record and bytes.
    await B.ack(bob.session, ev.msg.seq)
    assert.equal((await fb.gc(Date.now() + 48 * 3600_000)).files, 0, 'a message in a log still refers to it')
    assert.ok((await cluster.node(1).store.retain({ before: Date.now() + 1, keep: 0 }, 1000)) >= 2)
    assert.equal((await fa.gc(Date.now())).files, 0, 'the first pass after that only marks it')
    const swept = await fb.gc(Date.now() + 48 * 3600_000)
    assert.equal(swept.files, 1, 'the record is swept')
    assert.equal(swept.blobs, 1, 'and its bytes')
    assert.deepEqual(
      readdirSync(dir).filter((f) => f !== 'tmp'),
      [],
    )
    await assert.rejects(
      fa.openDownload(alice.session, done.fileId),
      (e: Error & { code?: string }) => e.code === 'SB_ERR_UNKNOWN_FILE',
    )
  })

  it("a node that starts on the shared folder leaves another node's upload in progress alone", async () => {
    const A = cluster.node(0).broker
    const dave = await A.register('dave', 'test', new FakeSink())
    await A.register('erin', 'test', new FakeSink())
    const data = Buffer.alloc(200_000, 9)
    const up = await services[0]!.beginUpload(dave.session, {
      name: 'slow.bin',
      size: data.length,
      to: { kind: 'name', name: 'erin' },
    })
    await up.write(data.subarray(0, 100_000))
    assert.equal(readdirSync(join(dir, 'tmp')).length, 1)
    // A third node (re)starts: in a folder it owned alone, every temporary file would be a dead one.
    const late = new FileService({
      blobs: new FsBlobStore({ dir, shared: true }),
      meta: new PostgresFileMeta(cluster.node(1).postgres),
      broker: cluster.node(1).broker,
    })
    await late.start()
    services.push(late)
    assert.equal(readdirSync(join(dir, 'tmp')).length, 1, "dave's upload is still there")
    await up.write(data.subarray(100_000))
    const done = await up.finish()
    assert.equal(done.sha256, createHash('sha256').update(data).digest('hex'))
  })
})
