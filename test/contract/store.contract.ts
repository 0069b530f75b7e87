/**
 * The Store contract (aedes-persistence style): every backend runs the same suite, so the broker can rely on
 * the semantics written in src/store/store.ts and nothing else. A backend file calls
 *
 *   runStoreContract('sqlite', make, cleanup, { reopen })
 *
 * where `make` returns a fresh, opened, empty store (one per test, so counts and topic lists are exact),
 * `cleanup` closes it and removes whatever it left behind, and the optional `reopen` closes a store and opens
 * another one on the same data (to check what must survive a restart).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { StoreError } from '../../src/store/errors.js'
import type { NewCopy, QueueLimits, Store, StoredMessage, StoreOp, StoreResult } from '../../src/store/store.js'

export interface StoreContractOptions {
  /** Close `store` and open another instance on the same data. Without it the restart tests are skipped. */
  reopen?: (store: Store) => Promise<Store>
  /**
   * Open a second instance on the same data while the first stays open (several nodes sharing a database).
   * Without it the multi-instance tests are skipped.
   */
  twin?: (store: Store) => Promise<Store>
  /** Tests a backend knowingly does not pass yet, with the reason (printed as a skip). */
  skip?: { reason: string; tests: string[] }[]
}

const NO_LIMIT: QueueLimits = { maxCount: 1_000_000, maxBytes: 1 << 30 }
const T0 = 1_700_000_000_000

let msgIds = 1

/** A copy for `to` with sensible defaults; `over` replaces fields. */
export function copy(to: number, over: Partial<NewCopy> = {}): NewCopy {
  return {
    to,
    kind: 'text',
    from: 1,
    fromName: 'sender',
    msgId: msgIds++,
    ts: T0,
    body: Buffer.from('hello'),
    flags: 0,
    ...over,
  }
}

function send(copies: NewCopy[], limits: QueueLimits = NO_LIMIT, dedupe?: { sender: number; msgId: number }): StoreOp {
  return { type: 'send', copies, limits, dedupe }
}

function seqsOf(r: StoreResult | undefined): number[] {
  assert.ok(r !== undefined && r.type === 'send' && !r.duplicate, `expected a stored send, got ${JSON.stringify(r)}`)
  return r.seqs
}

function removedOf(r: StoreResult | undefined): StoredMessage | null {
  assert.ok(r !== undefined && r.type === 'ack', `expected an ack result, got ${JSON.stringify(r)}`)
  return r.removed
}

async function sendOne(store: Store, c: NewCopy, limits: QueueLimits = NO_LIMIT): Promise<number> {
  const [r] = await store.commit([send([c], limits)])
  return seqsOf(r)[0]!
}

async function rejectsNameTaken(p: Promise<unknown>): Promise<StoreError> {
  let caught: StoreError | undefined
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof StoreError, `expected a StoreError, got ${String(err)}`)
    assert.equal(err.code, 'NAME_TAKEN')
    caught = err
    return true
  })
  return caught!
}

/** The fields a stored message must give back exactly as they were committed. */
function assertSameMessage(actual: StoredMessage, expected: NewCopy & { seq: number }): void {
  assert.equal(actual.seq, expected.seq)
  assert.equal(actual.to, expected.to)
  assert.equal(actual.from, expected.from)
  assert.equal(actual.fromName, expected.fromName)
  assert.equal(actual.msgId, expected.msgId)
  assert.equal(actual.kind, expected.kind)
  assert.equal(actual.ts, expected.ts)
  assert.equal(actual.flags, expected.flags)
  assert.equal(actual.topic, expected.topic)
  assert.equal(actual.expiresAt, expected.expiresAt)
  assert.equal(actual.notBefore, expected.notBefore)
  assert.equal(actual.fileId, expected.fileId)
  assert.ok(Buffer.isBuffer(actual.body), 'body is a Buffer')
  assert.ok(actual.body.equals(expected.body), 'body bytes round-trip')
}

export function runStoreContract(
  name: string,
  make: () => Promise<Store>,
  cleanup: (store: Store) => Promise<void>,
  opts: StoreContractOptions = {},
): void {
  const skipped = new Map<string, string>()
  for (const s of opts.skip ?? []) for (const t of s.tests) skipped.set(t, s.reason)

  /** One test with its own fresh store; cleanup runs whatever happens. */
  function test(title: string, fn: (store: Store, swap: (s: Store) => void) => Promise<void>): void {
    const reason = skipped.get(title)
    it(title, reason !== undefined ? { skip: reason } : {}, async () => {
      let store = await make()
      try {
        // A test that reopens the store swaps in the new instance, so cleanup closes the right one.
        await fn(store, (s) => {
          store = s
        })
      } finally {
        await cleanup(store)
      }
    })
  }

  describe(`Store contract: ${name}`, () => {
    // ------------------------------------------------------------------ basics

    test('ping resolves and kind is named', async (store) => {
      await store.ping()
      assert.equal(typeof store.kind, 'string')
      assert.ok(store.kind.length > 0)
    })

    // ------------------------------------------------------------------ users

    test('createUser returns the record; userById and userByName find it', async (store) => {
      const u = await store.createUser('ünïcode', 'ab'.repeat(32), T0)
      assert.ok(Number.isInteger(u.id) && u.id > 0, `id ${u.id} is a positive integer`)
      assert.deepEqual(u, { id: u.id, name: 'ünïcode', tokenHash: 'ab'.repeat(32), createdAt: T0 })
      assert.deepEqual(await store.userById(u.id), u)
      assert.deepEqual(await store.userByName('ünïcode'), u)
      assert.equal(await store.userById(u.id + 1000), undefined)
      assert.equal(await store.userByName('nobody'), undefined)
    })

    test('a tokenless user keeps tokenHash null; setTokenHash changes it', async (store) => {
      const u = await store.createUser('legacy', null, T0)
      assert.equal(u.tokenHash, null)
      assert.equal((await store.userById(u.id))?.tokenHash, null)
      await store.setTokenHash(u.id, 'cd'.repeat(32))
      assert.equal((await store.userById(u.id))?.tokenHash, 'cd'.repeat(32))
      await store.setTokenHash(u.id, null)
      assert.equal((await store.userByName('legacy'))?.tokenHash, null)
    })

    test('lastSeen is undefined until set, then the latest value; unknown ids give undefined', async (store) => {
      const a = await store.createUser('alice', null, 1000)
      assert.equal(await store.lastSeen(a.id), undefined)
      await store.setLastSeen(a.id, 5000)
      await store.setLastSeen(a.id, 7000)
      assert.equal(await store.lastSeen(a.id), 7000)
      assert.equal(await store.lastSeen(a.id + 999), undefined)
    })

    test('ids are allocated increasing and never reused, even after the newest user is deleted', async (store) => {
      const a = await store.createUser('a', null, T0)
      const b = await store.createUser('b', null, T0)
      assert.ok(b.id > a.id)
      await store.deleteUser(b.id)
      const c = await store.createUser('c', null, T0)
      assert.ok(c.id > b.id, `id ${c.id} reuses or precedes the deleted ${b.id}`)
      await store.deleteUser(a.id)
      const d = await store.createUser('a', null, T0)
      assert.ok(d.id > c.id, 'a re-registered name gets a new id')
    })

    test('ids survive a restart (never reused across reopen)', async (store, swap) => {
      if (opts.reopen === undefined) return
      const a = await store.createUser('a', null, T0)
      await store.deleteUser(a.id)
      const reopened = await opts.reopen(store)
      swap(reopened)
      const b = await reopened.createUser('b', null, T0)
      assert.ok(b.id > a.id, `id ${b.id} after restart reuses ${a.id}`)
      assert.equal(await reopened.userById(a.id), undefined)
    })

    test('names are unique: a second createUser throws SB_ERR_NAME_TAKEN and stores nothing', async (store) => {
      await store.createUser('alice', null, T0)
      await rejectsNameTaken(store.createUser('alice', 'ff'.repeat(32), T0))
      assert.equal(await store.countUsers(), 1)
      assert.equal((await store.userByName('alice'))?.tokenHash, null)
    })

    test('a look-alike of a name (same confusable skeleton) is taken: createUser and renameUser refuse it, naming the holder', async (store) => {
      const a = await store.createUser('alice', null, T0)
      for (const like of ['Alice', 'ALICE', '\u0430lice', 'al\u0131ce', '\uff41\uff4c\uff49\uff43\uff45']) {
        const err = await rejectsNameTaken(store.createUser(like, 'ff'.repeat(32), T0))
        assert.match(err.message, /looks like "alice"/, like)
      }
      const b = await store.createUser('bob', null, T0)
      await rejectsNameTaken(store.renameUser(b.id, 'ALICE'))
      assert.equal((await store.userById(b.id))?.name, 'bob')
      assert.equal((await store.userLike('\u0410LICE'))?.id, a.id)
      assert.equal(await store.userLike('carol'), undefined)
      await store.renameUser(a.id, 'Alice') // a change of case of one's own name is not a conflict
      assert.equal((await store.userById(a.id))?.name, 'Alice')
      await store.renameUser(a.id, 'alicia')
      assert.equal((await store.createUser('ALICE', null, T0)).name, 'ALICE', 'the skeleton is released with the name')
    })

    test('staleTokenless lists tokenless users neither seen nor created since a time, oldest first', async (store) => {
      const old = await store.createUser('old', null, T0)
      const seen = await store.createUser('seen', null, T0)
      await store.setLastSeen(seen.id, T0 + 5000)
      await store.createUser('token', 'ff'.repeat(32), T0)
      await store.createUser('fresh', null, T0 + 3000)
      assert.deepEqual(
        (await store.staleTokenless(T0 + 4000, 10)).map((u) => u.name),
        ['old', 'fresh'],
      )
      assert.deepEqual(
        (await store.staleTokenless(T0 + 1, 10)).map((u) => u.id),
        [old.id],
      )
      assert.equal((await store.staleTokenless(T0 + 10_000, 1)).length, 1, 'at most limit')
    })

    test('concurrent createUser of one name: exactly one wins', async (store) => {
      const results = await Promise.allSettled(Array.from({ length: 8 }, () => store.createUser('race', null, T0)))
      const won = results.filter((r) => r.status === 'fulfilled')
      assert.equal(won.length, 1)
      for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as StoreError).code, 'NAME_TAKEN')
      assert.equal(await store.countUsers(), 1)
    })

    test('renameUser moves the name; the old name is free; a taken name throws SB_ERR_NAME_TAKEN', async (store) => {
      const a = await store.createUser('alice', null, T0)
      const b = await store.createUser('bob', null, T0)
      await store.renameUser(a.id, 'alicia')
      assert.equal((await store.userById(a.id))?.name, 'alicia')
      assert.equal(await store.userByName('alice'), undefined)
      assert.equal((await store.userByName('alicia'))?.id, a.id)
      await rejectsNameTaken(store.renameUser(b.id, 'alicia'))
      assert.equal((await store.userById(b.id))?.name, 'bob', 'a failed rename changes nothing')
      await store.renameUser(b.id, 'bob') // to its own name: not a conflict
      assert.equal((await store.userByName('bob'))?.id, b.id)
      const c = await store.createUser('alice', null, T0) // the old name is free again
      assert.notEqual(c.id, a.id)
    })

    test('concurrent renames to one name: exactly one wins, the others keep their names', async (store) => {
      const users = await Promise.all(['u1', 'u2', 'u3', 'u4'].map((n) => store.createUser(n, null, T0)))
      const results = await Promise.allSettled(users.map((u) => store.renameUser(u.id, 'prize')))
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1)
      for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as StoreError).code, 'NAME_TAKEN')
      const winner = await store.userByName('prize')
      assert.ok(winner !== undefined)
      for (const [i, u] of users.entries())
        assert.equal((await store.userById(u.id))?.name, u.id === winner.id ? 'prize' : `u${i + 1}`)
    })

    test('rename racing a registration of the same name: exactly one gets it', async (store) => {
      const a = await store.createUser('a', null, T0)
      const results = await Promise.allSettled([store.renameUser(a.id, 'contested'), store.createUser('contested', null, T0)])
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1)
      const holder = await store.userByName('contested')
      assert.ok(holder !== undefined)
      assert.equal(await store.countUsers(), results[1]!.status === 'fulfilled' ? 2 : 1)
    })

    test('countUsers counts live users', async (store) => {
      assert.equal(await store.countUsers(), 0)
      const a = await store.createUser('a', null, T0)
      await store.createUser('b', null, T0)
      assert.equal(await store.countUsers(), 2)
      await store.deleteUser(a.id)
      assert.equal(await store.countUsers(), 1)
    })

    test('deleteUser returns the queued messages in seq order and drops queue, held, subscriptions, blocks', async (store) => {
      const u = await store.createUser('doomed', null, T0)
      const other = await store.createUser('other', null, T0)
      const c1 = copy(u.id, { body: Buffer.from('one') })
      const c2 = copy(u.id, { body: Buffer.from('two'), topic: 'news' })
      await store.commit([send([c1]), send([c2]), send([copy(u.id, { notBefore: T0 + 60_000 })])])
      await store.subscribe(u.id, 'news')
      await store.block(u.id, other.id)
      await store.block(other.id, u.id)
      const dropped = await store.deleteUser(u.id)
      assert.equal(dropped.length, 2, 'held messages are not returned, queued ones are')
      assertSameMessage(dropped[0]!, { ...c1, seq: 1 })
      assertSameMessage(dropped[1]!, { ...c2, seq: 2 })
      assert.equal(await store.userById(u.id), undefined)
      assert.equal(await store.userByName('doomed'), undefined)
      assert.deepEqual(await store.subscribers('news'), [])
      assert.deepEqual(await store.blocked(other.id), [], 'blocks naming the deleted user go too')
      assert.deepEqual(await store.readQueue(u.id, 0, 100, T0), [])
      assert.deepEqual(await store.queueStats(u.id), { count: 0, bytes: 0 })
      assert.deepEqual(await store.releaseDue(T0 + 120_000, 100), [], 'its held messages are gone')
      // A deleted user cannot receive: the copy answers 0 and nothing is stored.
      assert.deepEqual(seqsOf((await store.commit([send([copy(u.id)])]))[0]), [0])
      // A new user with the same name starts from an empty queue at seq 1.
      const again = await store.createUser('doomed', null, T0)
      assert.equal(await sendOne(store, copy(again.id)), 1)
    })

    test('deleteUser of an unknown id returns [] and does not throw', async (store) => {
      assert.deepEqual(await store.deleteUser(424242), [])
    })

    // ------------------------------------------------------------------ commit: sends

    test('commit: seqs start at 1 and are gap-free per recipient, within and across batches', async (store) => {
      const a = await store.createUser('a', null, T0)
      const b = await store.createUser('b', null, T0)
      const r1 = await store.commit([send([copy(a.id), copy(b.id)]), send([copy(a.id)]), send([copy(a.id)])])
      assert.equal(r1.length, 3)
      assert.deepEqual(seqsOf(r1[0]), [1, 1])
      assert.deepEqual(seqsOf(r1[1]), [2])
      assert.deepEqual(seqsOf(r1[2]), [3])
      const r2 = await store.commit([send([copy(b.id)]), send([copy(a.id)])])
      assert.deepEqual(seqsOf(r2[0]), [2])
      assert.deepEqual(seqsOf(r2[1]), [4])
      assert.deepEqual(
        (await store.readQueue(a.id, 0, 100, T0)).map((m) => m.seq),
        [1, 2, 3, 4],
      )
    })

    test('commit: seqs keep growing after acks (an acknowledged seq is never handed out again)', async (store) => {
      const a = await store.createUser('a', null, T0)
      assert.equal(await sendOne(store, copy(a.id)), 1)
      assert.equal(await sendOne(store, copy(a.id)), 2)
      await store.commit([
        { type: 'ack', user: a.id, seq: 1 },
        { type: 'ack', user: a.id, seq: 2 },
      ])
      assert.equal(await sendOne(store, copy(a.id)), 3)
    })

    test('commit: seqs survive a restart', async (store, swap) => {
      if (opts.reopen === undefined) return
      const a = await store.createUser('a', null, T0)
      await sendOne(store, copy(a.id))
      await sendOne(store, copy(a.id))
      await store.commit([{ type: 'ack', user: a.id, seq: 2 }])
      const reopened = await opts.reopen(store)
      swap(reopened)
      assert.equal(await sendOne(reopened, copy(a.id)), 3)
      assert.deepEqual(
        (await reopened.readQueue(a.id, 0, 10, T0)).map((m) => m.seq),
        [1, 3],
      )
      assert.deepEqual(await reopened.queueStats(a.id), { count: 2, bytes: 10 })
    })

    test('queue counters are right after a restart whose first operation is an ack or an expiry', async (store, swap) => {
      if (opts.reopen === undefined) return
      const a = await store.createUser('a', null, T0)
      await store.commit([send([copy(a.id)]), send([copy(a.id)]), send([copy(a.id, { expiresAt: T0 })]), send([copy(a.id)])])
      let s = await opts.reopen(store)
      swap(s)
      await s.commit([{ type: 'ack', user: a.id, seq: 1 }])
      assert.deepEqual(await s.queueStats(a.id), { count: 3, bytes: 15 })
      s = await opts.reopen(s)
      swap(s)
      assert.equal((await s.expire(T0, 10)).length, 1)
      assert.deepEqual(await s.queueStats(a.id), { count: 2, bytes: 10 })
      // The limit sees the true count: two queued, room for exactly one more under maxCount 3.
      const res = await s.commit([
        send([copy(a.id)], { maxCount: 3, maxBytes: 1 << 20 }),
        send([copy(a.id)], { maxCount: 3, maxBytes: 1 << 20 }),
      ])
      assert.deepEqual(
        res.map((r) => seqsOf(r)[0]),
        [5, 0],
      )
    })

    test('commit: every field of a copy round-trips (binary body, topic, expiry, notBefore in the past, fileId)', async (store) => {
      const a = await store.createUser('a', null, T0)
      const c1 = copy(a.id, {
        kind: 'file',
        from: 77,
        fromName: 'Zoë',
        msgId: 0xfffffffe,
        body: Buffer.from([0, 1, 2, 0xff, 0xfe, 0, 0x5c, 0x27]),
        flags: 7,
        topic: 'news',
        expiresAt: T0 + 3_600_000,
        notBefore: T0 - 1, // already due: stored at once, notBefore kept
        fileId: 'f-0123456789abcdef',
      })
      const c2 = copy(a.id, { kind: 'receipt', body: Buffer.alloc(0), from: 0, fromName: 'SERVER' })
      const c3 = copy(a.id, { kind: 'notice', body: Buffer.alloc(70_000, 0x61) })
      const c4 = copy(a.id, { kind: 'control', body: Buffer.from('{"x":1}') })
      const res = await store.commit([send([c1]), send([c2, c3, c4])])
      assert.deepEqual(seqsOf(res[0]), [1])
      assert.deepEqual(seqsOf(res[1]), [2, 3, 4])
      const q = await store.readQueue(a.id, 0, 10, T0)
      assert.equal(q.length, 4)
      assertSameMessage(q[0]!, { ...c1, seq: 1 })
      assertSameMessage(q[1]!, { ...c2, seq: 2 })
      assertSameMessage(q[2]!, { ...c3, seq: 3 })
      assertSameMessage(q[3]!, { ...c4, seq: 4 })
    })

    test('commit: results answer ops in order, sends and acks mixed', async (store) => {
      const a = await store.createUser('a', null, T0)
      await sendOne(store, copy(a.id))
      const res = await store.commit([
        { type: 'ack', user: a.id, seq: 1 },
        send([copy(a.id)]),
        { type: 'ack', user: a.id, seq: 99 },
        send([copy(a.id)]),
      ])
      assert.equal(res.length, 4)
      assert.equal(removedOf(res[0])?.seq, 1)
      assert.deepEqual(seqsOf(res[1]), [2])
      assert.equal(removedOf(res[2]), null)
      assert.deepEqual(seqsOf(res[3]), [3])
    })

    test('commit: an empty batch resolves to []', async (store) => {
      assert.deepEqual(await store.commit([]), [])
    })

    test('commit: a copy to an unknown user answers 0 and does not disturb the others', async (store) => {
      const a = await store.createUser('a', null, T0)
      const res = await store.commit([send([copy(a.id), copy(987654), copy(a.id)])])
      assert.deepEqual(seqsOf(res[0]), [1, 0, 2])
      assert.deepEqual(await store.queueStats(987654), { count: 0, bytes: 0 })
    })

    test('commit: an ack of a message committed earlier in the same batch removes it', async (store) => {
      const a = await store.createUser('a', null, T0)
      const c = copy(a.id)
      const res = await store.commit([send([c]), { type: 'ack', user: a.id, seq: 1 }, { type: 'ack', user: a.id, seq: 1 }])
      assert.deepEqual(seqsOf(res[0]), [1])
      assertSameMessage(removedOf(res[1])!, { ...c, seq: 1 })
      assert.equal(removedOf(res[2]), null, 'the second ack of the same seq removes nothing')
      assert.deepEqual(await store.readQueue(a.id, 0, 10, T0), [])
      assert.deepEqual(await store.queueStats(a.id), { count: 0, bytes: 0 })
    })

    test('commit: an ack that comes before the send of that seq in a batch removes nothing', async (store) => {
      const a = await store.createUser('a', null, T0)
      const res = await store.commit([{ type: 'ack', user: a.id, seq: 1 }, send([copy(a.id)])])
      assert.equal(removedOf(res[0]), null)
      assert.deepEqual(seqsOf(res[1]), [1])
      assert.equal((await store.readQueue(a.id, 0, 10, T0)).length, 1)
    })

    test('commit: concurrent batches to one recipient still give gap-free distinct seqs', async (store) => {
      const a = await store.createUser('a', null, T0)
      const batches = await Promise.all(
        Array.from({ length: 10 }, () => store.commit(Array.from({ length: 10 }, () => send([copy(a.id)])))),
      )
      const all = batches.flatMap((b) => b.flatMap((r) => seqsOf(r))).sort((x, y) => x - y)
      assert.deepEqual(
        all,
        Array.from({ length: 100 }, (_, i) => i + 1),
      )
      assert.deepEqual(await store.queueStats(a.id), { count: 100, bytes: 500 })
    })

    test('commit: two instances on the same data interleave without reusing seqs or ids', async (store) => {
      if (opts.twin === undefined) return
      const other = await opts.twin(store)
      try {
        const a = await store.createUser('a', null, T0)
        const b = await other.createUser('b', null, T0)
        assert.notEqual(a.id, b.id)
        await rejectsNameTaken(other.createUser('a', null, T0))
        const [r1, r2] = await Promise.all([
          store.commit(Array.from({ length: 20 }, () => send([copy(a.id), copy(b.id)]))),
          other.commit(Array.from({ length: 20 }, () => send([copy(a.id), copy(b.id)]))),
        ])
        for (const idx of [0, 1]) {
          const seqs = [...r1, ...r2].map((r) => seqsOf(r)[idx]!).sort((x, y) => x - y)
          assert.deepEqual(
            seqs,
            Array.from({ length: 40 }, (_, i) => i + 1),
          )
        }
        assert.deepEqual(await other.queueStats(a.id), { count: 40, bytes: 200 })
      } finally {
        await other.close()
      }
    })

    // ------------------------------------------------------------------ commit: limits

    test('queue limits: a copy beyond maxCount answers 0, stores nothing and takes no seq', async (store) => {
      const a = await store.createUser('a', null, T0)
      const b = await store.createUser('b', null, T0)
      const limits = { maxCount: 2, maxBytes: 1 << 20 }
      const res = await store.commit([
        send([copy(a.id)], limits),
        send([copy(a.id)], limits),
        send([copy(a.id), copy(b.id)], limits),
      ])
      assert.deepEqual(seqsOf(res[0]), [1])
      assert.deepEqual(seqsOf(res[1]), [2])
      assert.deepEqual(seqsOf(res[2]), [0, 1], 'a full queue refuses its copy only')
      assert.deepEqual(await store.queueStats(a.id), { count: 2, bytes: 10 })
      // An ack frees room, and the next seq is 3: the refused copy left no gap.
      const res2 = await store.commit([
        { type: 'ack', user: a.id, seq: 1 },
        send([copy(a.id)], limits),
        send([copy(a.id)], limits),
      ])
      assert.equal(removedOf(res2[0])?.seq, 1)
      assert.deepEqual(seqsOf(res2[1]), [3])
      assert.deepEqual(seqsOf(res2[2]), [0])
      assert.deepEqual(
        (await store.readQueue(a.id, 0, 10, T0)).map((m) => m.seq),
        [2, 3],
      )
    })

    test('queue limits: maxBytes counts body bytes; exactly at the limit is allowed', async (store) => {
      const a = await store.createUser('a', null, T0)
      const limits = { maxCount: 100, maxBytes: 10 }
      const res = await store.commit([
        send([copy(a.id, { body: Buffer.alloc(6) })], limits),
        send([copy(a.id, { body: Buffer.alloc(5) })], limits),
        send([copy(a.id, { body: Buffer.alloc(4) })], limits),
        send([copy(a.id, { body: Buffer.alloc(1) })], limits),
      ])
      assert.deepEqual(
        res.map((r) => seqsOf(r)[0]),
        [1, 0, 2, 0],
      )
      assert.deepEqual(await store.queueStats(a.id), { count: 2, bytes: 10 })
    })

    test('queue limits: a refused copy says why (length, bytes, no such user); a stored send says nothing', async (store) => {
      const a = await store.createUser('a', null, T0)
      const b = await store.createUser('b', null, T0)
      const limits = { maxCount: 2, maxBytes: 10 }
      const res = await store.commit([
        send([copy(a.id, { body: Buffer.alloc(1) }), copy(b.id, { body: Buffer.alloc(9) })], limits),
        send([copy(a.id, { body: Buffer.alloc(1) }), copy(b.id, { body: Buffer.alloc(2) }), copy(987654)], limits),
        send([copy(a.id, { body: Buffer.alloc(1) })], limits),
      ])
      assert.deepEqual(res[0], { type: 'send', duplicate: false, seqs: [1, 1] })
      assert.deepEqual(res[1], {
        type: 'send',
        duplicate: false,
        seqs: [2, 0, 0],
        refused: [null, 'queue-bytes', 'no-such-user'],
      })
      assert.deepEqual(res[2], { type: 'send', duplicate: false, seqs: [0], refused: ['queue-length'] })
    })

    test('dedupe: a key given back by a send that stored nothing may be claimed again later in the batch', async (store) => {
      const a = await store.createUser('a', null, T0)
      const limits = { maxCount: 1, maxBytes: 1 << 20 }
      assert.equal(await sendOne(store, copy(a.id), limits), 1)
      const key = { sender: 4, msgId: 4 }
      const res = await store.commit([
        send([copy(a.id)], limits, key),
        { type: 'ack', user: a.id, seq: 1 },
        send([copy(a.id)], limits, key),
        send([copy(a.id)], limits, key),
      ])
      assert.deepEqual(seqsOf(res[0]), [0], 'refused: the queue is full')
      assert.deepEqual(seqsOf(res[2]), [2], 'the retry after the ack is stored, not a duplicate')
      assert.deepEqual(res[3], { type: 'send', duplicate: true })
      assert.deepEqual(await store.commit([send([copy(a.id)], NO_LIMIT, key)]), [{ type: 'send', duplicate: true }])
    })

    test('queue limits: an ack earlier in the batch frees room for a later send; a later ack does not', async (store) => {
      const a = await store.createUser('a', null, T0)
      const limits = { maxCount: 1, maxBytes: 1 << 20 }
      assert.equal(await sendOne(store, copy(a.id), limits), 1)
      const res = await store.commit([
        send([copy(a.id)], limits),
        { type: 'ack', user: a.id, seq: 1 },
        send([copy(a.id)], limits),
      ])
      assert.deepEqual(seqsOf(res[0]), [0])
      assert.equal(removedOf(res[1])?.seq, 1)
      assert.deepEqual(seqsOf(res[2]), [2])
    })

    test('queueStats follows sends, acks, expiry and release', async (store) => {
      const a = await store.createUser('a', null, T0)
      assert.deepEqual(await store.queueStats(a.id), { count: 0, bytes: 0 })
      await store.commit([
        send([copy(a.id, { body: Buffer.alloc(3) })]),
        send([copy(a.id, { body: Buffer.alloc(4), expiresAt: T0 + 10 })]),
        send([copy(a.id, { body: Buffer.alloc(5), notBefore: T0 + 20 })]),
      ])
      assert.deepEqual(await store.queueStats(a.id), { count: 2, bytes: 7 })
      await store.expire(T0 + 10, 100)
      assert.deepEqual(await store.queueStats(a.id), { count: 1, bytes: 3 })
      await store.releaseDue(T0 + 20, 100)
      assert.deepEqual(await store.queueStats(a.id), { count: 2, bytes: 8 })
      await store.commit([{ type: 'ack', user: a.id, seq: 1 }])
      assert.deepEqual(await store.queueStats(a.id), { count: 1, bytes: 5 })
    })

    // ------------------------------------------------------------------ commit: held messages

    test('held: notBefore in the future answers -1; releaseDue gives seqs in notBefore order', async (store) => {
      const a = await store.createUser('a', null, T0)
      const late = copy(a.id, { notBefore: T0 + 300, body: Buffer.from('late') })
      const early = copy(a.id, { notBefore: T0 + 100, body: Buffer.from('early') })
      const res = await store.commit([send([late]), send([early]), send([copy(a.id)])])
      assert.deepEqual(
        res.map((r) => seqsOf(r)[0]),
        [-1, -1, 1],
      )
      assert.deepEqual(
        (await store.readQueue(a.id, 0, 10, T0 + 1000)).map((m) => m.seq),
        [1],
        'held messages are not queued yet',
      )
      assert.deepEqual(await store.releaseDue(T0 + 99, 10), [], 'nothing is due yet')
      const first = await store.releaseDue(T0 + 100, 10)
      assert.equal(first.length, 1)
      assertSameMessage(first[0]!, { ...early, seq: 2 })
      assert.equal(await sendOne(store, copy(a.id)), 3, 'a release takes the next seq, like a send')
      const second = await store.releaseDue(T0 + 1000, 10)
      assert.equal(second.length, 1)
      assertSameMessage(second[0]!, { ...late, seq: 4 })
      assert.deepEqual(await store.releaseDue(T0 + 1000, 10), [], 'released once only')
      const q = await store.readQueue(a.id, 0, 10, T0 + 1000)
      assert.deepEqual(
        q.map((m) => m.body.toString()),
        ['hello', 'early', 'hello', 'late'],
      )
    })

    test('held: releaseDue honours its limit and releases ties in commit order', async (store) => {
      const a = await store.createUser('a', null, T0)
      const b = await store.createUser('b', null, T0)
      const ops = Array.from({ length: 5 }, (_, i) =>
        send([copy(i % 2 ? b.id : a.id, { notBefore: T0 + 50, body: Buffer.from(`m${i}`) })]),
      )
      await store.commit(ops)
      const r1 = await store.releaseDue(T0 + 50, 3)
      const r2 = await store.releaseDue(T0 + 50, 3)
      assert.equal(r1.length, 3)
      assert.equal(r2.length, 2)
      assert.deepEqual(
        [...r1, ...r2].map((m) => m.body.toString()),
        ['m0', 'm1', 'm2', 'm3', 'm4'],
      )
      assert.deepEqual(
        (await store.readQueue(a.id, 0, 10, T0)).map((m) => [m.seq, m.body.toString()]),
        [
          [1, 'm0'],
          [2, 'm2'],
          [3, 'm4'],
        ],
      )
      assert.deepEqual(
        (await store.readQueue(b.id, 0, 10, T0)).map((m) => [m.seq, m.body.toString()]),
        [
          [1, 'm1'],
          [2, 'm3'],
        ],
      )
    })

    // ------------------------------------------------------------------ commit: dedupe

    test('dedupe: a second send with the same key is a duplicate and stores nothing', async (store) => {
      const a = await store.createUser('a', null, T0)
      const key = { sender: 5, msgId: 42 }
      const r1 = await store.commit([send([copy(a.id, { from: 5, msgId: 42 })], NO_LIMIT, key)])
      assert.deepEqual(seqsOf(r1[0]), [1])
      const r2 = await store.commit([send([copy(a.id, { from: 5, msgId: 42 })], NO_LIMIT, key)])
      assert.deepEqual(r2, [{ type: 'send', duplicate: true }])
      assert.deepEqual(await store.queueStats(a.id), { count: 1, bytes: 5 })
      // The key outlives the message: an acknowledged message retried is still a duplicate.
      await store.commit([{ type: 'ack', user: a.id, seq: 1 }])
      assert.deepEqual(await store.commit([send([copy(a.id)], NO_LIMIT, key)]), [{ type: 'send', duplicate: true }])
      assert.equal(await sendOne(store, copy(a.id)), 2, 'the duplicate took no seq')
    })

    test('dedupe: within one batch the first send wins; other keys and key-less sends are independent', async (store) => {
      const a = await store.createUser('a', null, T0)
      const res = await store.commit([
        send([copy(a.id)], NO_LIMIT, { sender: 5, msgId: 1 }),
        send([copy(a.id)], NO_LIMIT, { sender: 5, msgId: 1 }),
        send([copy(a.id)], NO_LIMIT, { sender: 6, msgId: 1 }),
        send([copy(a.id)], NO_LIMIT, { sender: 5, msgId: 2 }),
        send([copy(a.id)]),
      ])
      assert.deepEqual(seqsOf(res[0]), [1])
      assert.deepEqual(res[1], { type: 'send', duplicate: true })
      assert.deepEqual(seqsOf(res[2]), [2])
      assert.deepEqual(seqsOf(res[3]), [3])
      assert.deepEqual(seqsOf(res[4]), [4])
    })

    test('dedupe: a multi-copy (topic) send is deduplicated as a whole', async (store) => {
      const a = await store.createUser('a', null, T0)
      const b = await store.createUser('b', null, T0)
      const key = { sender: 9, msgId: 9 }
      const op = () => send([copy(a.id, { topic: 't' }), copy(b.id, { topic: 't' })], NO_LIMIT, key)
      assert.deepEqual(seqsOf((await store.commit([op()]))[0]), [1, 1])
      assert.deepEqual(await store.commit([op()]), [{ type: 'send', duplicate: true }])
      assert.equal((await store.queueStats(b.id)).count, 1)
    })

    test('dedupe: concurrent retries of one key store it once', async (store) => {
      const a = await store.createUser('a', null, T0)
      const key = { sender: 3, msgId: 77 }
      const res = await Promise.all(Array.from({ length: 6 }, () => store.commit([send([copy(a.id)], NO_LIMIT, key)])))
      assert.equal(res.filter((r) => r[0]?.type === 'send' && !r[0].duplicate).length, 1)
      assert.deepEqual(await store.queueStats(a.id), { count: 1, bytes: 5 })
    })

    test('pruneDedupe forgets keys recorded before the cut-off and counts them', async (store) => {
      const a = await store.createUser('a', null, T0)
      await store.commit([
        send([copy(a.id, { ts: T0 })], NO_LIMIT, { sender: 1, msgId: 1 }),
        send([copy(a.id, { ts: T0 + 1000 })], NO_LIMIT, { sender: 1, msgId: 2 }),
      ])
      assert.equal(await store.pruneDedupe(T0 + 1), 1)
      assert.equal(await store.pruneDedupe(T0 + 1), 0)
      const res = await store.commit([
        send([copy(a.id)], NO_LIMIT, { sender: 1, msgId: 1 }),
        send([copy(a.id)], NO_LIMIT, { sender: 1, msgId: 2 }),
      ])
      assert.deepEqual(seqsOf(res[0]), [3], 'a pruned key may be used again')
      assert.deepEqual(res[1], { type: 'send', duplicate: true }, 'a younger key is kept')
    })

    // ------------------------------------------------------------------ ack

    test('ack removes the message and returns the whole row; a second ack returns null', async (store) => {
      const a = await store.createUser('a', null, T0)
      const c = copy(a.id, { topic: 'x', flags: 1, expiresAt: T0 + 5000, fileId: 'fid', body: Buffer.from([9, 8, 7]) })
      await sendOne(store, c)
      const [r1] = await store.commit([{ type: 'ack', user: a.id, seq: 1 }])
      assertSameMessage(removedOf(r1)!, { ...c, seq: 1 })
      const [r2] = await store.commit([{ type: 'ack', user: a.id, seq: 1 }])
      assert.equal(removedOf(r2), null)
      const [r3] = await store.commit([{ type: 'ack', user: 999_999, seq: 1 }])
      assert.equal(removedOf(r3), null, 'ack for an unknown user is null, not an error')
    })

    test('ack is per recipient: the same seq of another user is untouched', async (store) => {
      const a = await store.createUser('a', null, T0)
      const b = await store.createUser('b', null, T0)
      await store.commit([send([copy(a.id), copy(b.id)])])
      await store.commit([{ type: 'ack', user: a.id, seq: 1 }])
      assert.equal((await store.readQueue(b.id, 0, 10, T0)).length, 1)
    })

    test('concurrent acks of one message: exactly one returns it', async (store) => {
      const a = await store.createUser('a', null, T0)
      await sendOne(store, copy(a.id))
      const res = await Promise.all(Array.from({ length: 5 }, () => store.commit([{ type: 'ack', user: a.id, seq: 1 }])))
      assert.equal(res.filter((r) => removedOf(r[0]) !== null).length, 1)
      assert.deepEqual(await store.queueStats(a.id), { count: 0, bytes: 0 })
    })

    // ------------------------------------------------------------------ readQueue and expire

    test('readQueue: oldest first, after afterSeq, at most limit', async (store) => {
      const a = await store.createUser('a', null, T0)
      const b = await store.createUser('b', null, T0)
      await store.commit(Array.from({ length: 10 }, (_, i) => send([copy(a.id, { body: Buffer.from(`m${i + 1}`) }), copy(b.id)])))
      const q = await store.readQueue(a.id, 0, 100, T0)
      assert.deepEqual(
        q.map((m) => m.seq),
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
      )
      assert.deepEqual(
        q.map((m) => m.body.toString()),
        q.map((m) => `m${m.seq}`),
      )
      assert.ok(q.every((m) => m.to === a.id))
      assert.deepEqual(
        (await store.readQueue(a.id, 4, 3, T0)).map((m) => m.seq),
        [5, 6, 7],
      )
      assert.deepEqual(
        (await store.readQueue(a.id, 10, 5, T0)).map((m) => m.seq),
        [],
      )
      await store.commit([{ type: 'ack', user: a.id, seq: 5 }])
      assert.deepEqual(
        (await store.readQueue(a.id, 3, 3, T0)).map((m) => m.seq),
        [4, 6, 7],
        'gaps from acks are skipped',
      )
      assert.deepEqual(await store.readQueue(424242, 0, 10, T0), [])
    })

    test('readQueue hides messages that expired by now (expiresAt <= now) without removing them', async (store) => {
      const a = await store.createUser('a', null, T0)
      await store.commit([
        send([copy(a.id, { expiresAt: T0 + 100 })]),
        send([copy(a.id)]),
        send([copy(a.id, { expiresAt: T0 + 200 })]),
      ])
      assert.deepEqual(
        (await store.readQueue(a.id, 0, 10, T0 + 99)).map((m) => m.seq),
        [1, 2, 3],
      )
      assert.deepEqual(
        (await store.readQueue(a.id, 0, 10, T0 + 100)).map((m) => m.seq),
        [2, 3],
      )
      assert.deepEqual(
        (await store.readQueue(a.id, 0, 10, T0 + 200)).map((m) => m.seq),
        [2],
      )
      assert.equal((await store.queueStats(a.id)).count, 3, 'reading does not expire')
    })

    test('expire removes and returns messages with expiresAt <= now, at most limit per call', async (store) => {
      const a = await store.createUser('a', null, T0)
      const b = await store.createUser('b', null, T0)
      await store.commit([
        send([copy(a.id, { expiresAt: T0 + 10, msgId: 101 })]),
        send([copy(b.id, { expiresAt: T0 + 10, msgId: 102 })]),
        send([copy(a.id, { expiresAt: T0 + 10, msgId: 103 })]),
        send([copy(a.id, { expiresAt: T0 + 50, msgId: 104 })]),
        send([copy(a.id, { msgId: 105 })]),
      ])
      assert.deepEqual(await store.expire(T0 + 9, 100), [])
      const first = await store.expire(T0 + 10, 2)
      assert.equal(first.length, 2)
      const second = await store.expire(T0 + 10, 2)
      assert.equal(second.length, 1)
      assert.deepEqual([...first, ...second].map((m) => m.msgId).sort(), [101, 102, 103])
      for (const m of [...first, ...second]) assert.equal(m.expiresAt, T0 + 10)
      assert.deepEqual(await store.expire(T0 + 10, 100), [], 'expired once only')
      assert.deepEqual(
        (await store.readQueue(a.id, 0, 10, 0)).map((m) => m.msgId),
        [104, 105],
      )
      assert.deepEqual(await store.queueStats(b.id), { count: 0, bytes: 0 })
    })

    test('concurrent expire calls return each expired message once', async (store) => {
      const a = await store.createUser('a', null, T0)
      await store.commit(Array.from({ length: 20 }, () => send([copy(a.id, { expiresAt: T0 })])))
      const all = (await Promise.all(Array.from({ length: 4 }, () => store.expire(T0, 100)))).flat()
      assert.deepEqual(
        all.map((m) => m.seq).sort((x, y) => x - y),
        Array.from({ length: 20 }, (_, i) => i + 1),
      )
    })

    // ------------------------------------------------------------------ topics

    test('subscribe/unsubscribe report changes; subscribers, subscriptions and topics are sorted', async (store) => {
      const a = await store.createUser('a', null, T0)
      const b = await store.createUser('b', null, T0)
      assert.equal(await store.subscribe(b.id, 'news'), true)
      assert.equal(await store.subscribe(b.id, 'news'), false, 'already subscribed')
      assert.equal(await store.subscribe(a.id, 'news'), true)
      assert.equal(await store.subscribe(a.id, 'alerts'), true)
      assert.equal(await store.subscribe(a.id, 'ünï'), true)
      assert.deepEqual(
        await store.subscribers('news'),
        [a.id, b.id].sort((x, y) => x - y),
      )
      assert.deepEqual(await store.subscribers('none'), [])
      assert.deepEqual(await store.subscriptions(a.id), ['alerts', 'news', 'ünï'])
      assert.deepEqual(await store.topics(), [
        { topic: 'alerts', subscribers: 1 },
        { topic: 'news', subscribers: 2 },
        { topic: 'ünï', subscribers: 1 },
      ])
      assert.equal(await store.unsubscribe(a.id, 'news'), true)
      assert.equal(await store.unsubscribe(a.id, 'news'), false)
      assert.deepEqual(await store.subscribers('news'), [b.id])
      await store.unsubscribe(a.id, 'alerts')
      assert.deepEqual(
        (await store.topics()).map((t) => t.topic),
        ['news', 'ünï'],
        'a topic without subscribers is gone',
      )
    })

    // ------------------------------------------------------------------ blocks

    test('block list: block/unblock report changes; isBlocked is directional; blocked is sorted', async (store) => {
      const a = await store.createUser('a', null, T0)
      const b = await store.createUser('b', null, T0)
      const c = await store.createUser('c', null, T0)
      assert.equal(await store.block(a.id, c.id), true)
      assert.equal(await store.block(a.id, c.id), false)
      assert.equal(await store.block(a.id, b.id), true)
      assert.equal(await store.isBlocked(a.id, b.id), true, 'a blocked b')
      assert.equal(await store.isBlocked(b.id, a.id), false, 'b did not block a')
      assert.deepEqual(
        await store.blocked(a.id),
        [b.id, c.id].sort((x, y) => x - y),
      )
      assert.deepEqual(await store.blocked(b.id), [])
      assert.equal(await store.unblock(a.id, b.id), true)
      assert.equal(await store.unblock(a.id, b.id), false)
      assert.equal(await store.isBlocked(a.id, b.id), false)
      assert.deepEqual(await store.blocked(a.id), [c.id])
    })
  })
}

export type { Store }
