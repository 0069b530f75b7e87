/**
 * The Store contract (aedes-persistence style): every backend runs the same suite, so the broker can rely on
 * the semantics written in src/store/store.ts and nothing else. A backend file calls
 *
 *   runStoreContract('sqlite', make, cleanup, { reopen })
 *
 * where `make` returns a fresh, opened, empty store (one per test, so counts and topic lists are exact),
 * `cleanup` closes it and removes whatever it left behind, and the optional `reopen` closes a store and opens
 * another one on the same data (to check what must survive a restart).
 *
 * Decisions this suite pins down where src/store/store.ts leaves room (the core and every backend rely on them):
 *
 * - An ack of a seq that is not in the log (never handed out, 0, beyond the next seq, or acknowledged before the
 *   send of that seq later in the same batch) is {first: null, fresh: false} and moves no cursor. An ack naming a
 *   device of another user (or no device) is the same, and changes nothing. An ack of a seq that was handed out but
 *   whose row is gone (expired, retained away) or never needed one (a sent copy) moves the cursor: fresh true,
 *   first null.
 * - `first` goes to the first acknowledgement by any device; expiry and sent copies count as handled, so an ack
 *   after either is never `first`.
 * - A read of a row is `first` once, whether or not any device acknowledged it, also within one batch and also
 *   for a row inserted earlier in the same batch; read marks survive a restart; a read of no row is null.
 * - A sent copy (Flag SENT = 8) gets a seq at once (never -1, never refused by the limits, not counted by
 *   queueStats) and is handled from the start; the device it names (`device`) has it at once: that cursor takes the
 *   seq in the same commit. It does not count as "stored" for dedupe: a send whose every real
 *   copy was refused gives its key back although its sent copy was kept (the sender's retry is not a duplicate).
 * - createDevice's cursor floor is the user's next seq - 1 (refused copies took no seq; held ones have none yet);
 *   the first device's is 0.
 * - retain: `keep` counts seqs, not acknowledged messages: the newest `keep` seqs of a user's log (next - keep and
 *   above, acknowledged or not) are never removed by retention (keep 0 keeps none); below them, and for any seq
 *   whose ts < before (strictly), a handled message goes. An unhandled one never does. It returns how many went.
 * - history does not look at `now`: an expired row shows until expire() removes it.
 * - expire removes every due row (handled or not), returns only those no device had acknowledged (not sent
 *   copies), and those stop counting against the limits.
 * - deleteUser returns what no device acknowledged (not sent copies), in seq order, and removes the devices
 *   (their tokens are no longer found).
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { StoreError } from '../../src/store/errors.js'
import type {
  DeviceRecord,
  NewCopy,
  QueueLimits,
  Store,
  StoredMessage,
  StoreOp,
  StoreResult,
  UserRecord,
} from '../../src/store/store.js'

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

export const NO_LIMIT: QueueLimits = { maxCount: 1_000_000, maxBytes: 1 << 30 }
const T0 = 1_700_000_000_000
/** Flag.SENT (src/core/types.ts). */
const SENT = 8

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

/** A sent copy: `u`'s own copy of what it sent to `peer` from `device`. */
function sentCopy(u: { id: number; device: number }, peer: number, over: Partial<NewCopy> = {}): NewCopy {
  return copy(u.id, { from: u.id, fromName: 'me', flags: SENT, peer, device: u.device, ...over })
}

/** A distinct token hash (64 hex digits). */
function tok(n: number): string {
  return n.toString(16).padStart(64, '0')
}

/** A user made for a test: its id, its first device's id, and the records createUser gave. */
interface TestUser {
  id: number
  device: number
  user: UserRecord
  dev: DeviceRecord
}

let tokens = 1

/** createUser with a fresh token (or `token: null`, tokenless) and label 'test'. */
async function mkUser(
  store: Store,
  name: string,
  o: { token?: string | null; now?: number; password?: string | null } = {},
): Promise<TestUser> {
  const token = o.token === undefined ? tok(tokens++) : o.token
  const r = await store.createUser(name, { tokenHash: token, label: 'test' }, o.now ?? T0, o.password)
  return { id: r.user.id, device: r.device.id, user: r.user, dev: r.device }
}

function send(copies: NewCopy[], limits: QueueLimits = NO_LIMIT, dedupe?: { sender: number; msgId: number }): StoreOp {
  return { type: 'send', copies, limits, dedupe }
}

/** `u`'s device (its first unless given) acknowledges `seq`. */
function ack(u: { id: number; device: number }, seq: number, device = u.device): StoreOp {
  return { type: 'ack', user: u.id, device, seq }
}

function read(u: { id: number }, seq: number): StoreOp {
  return { type: 'read', user: u.id, seq }
}

function seqsOf(r: StoreResult | undefined): number[] {
  assert.ok(r !== undefined && r.type === 'send' && !r.duplicate, `expected a stored send, got ${JSON.stringify(r)}`)
  return r.seqs
}

function ackOf(r: StoreResult | undefined): { first: StoredMessage | null; fresh: boolean } {
  assert.ok(r !== undefined && r.type === 'ack', `expected an ack result, got ${JSON.stringify(r)}`)
  return { first: r.first, fresh: r.fresh }
}

function firstOf(r: StoreResult | undefined): StoredMessage | null {
  return ackOf(r).first
}

function readOf(r: StoreResult | undefined): StoredMessage | null {
  assert.ok(r !== undefined && r.type === 'read', `expected a read result, got ${JSON.stringify(r)}`)
  return r.first
}

async function sendOne(store: Store, c: NewCopy, limits: QueueLimits = NO_LIMIT): Promise<number> {
  const [r] = await store.commit([send([c], limits)])
  return seqsOf(r)[0]!
}

async function seqs(store: Store, user: number, after = 0, now = T0): Promise<number[]> {
  return (await store.readLog(user, after, 1000, now)).map((m) => m.seq)
}

async function cursor(store: Store, device: number): Promise<{ floor: number; above: [number, number][] } | undefined> {
  return (await store.deviceById(device))?.acks
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
function assertSameMessage(actual: StoredMessage | null | undefined, expected: NewCopy & { seq: number }): void {
  assert.ok(actual !== null && actual !== undefined, `expected message ${expected.seq}, got ${String(actual)}`)
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
  assert.equal(actual.peer, expected.peer)
  assert.equal(actual.device, expected.device)
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

    test('createUser returns the user and its first device; userById, userByName, deviceById and deviceByToken find them', async (store) => {
      const r = await store.createUser('ünïcode', { tokenHash: 'ab'.repeat(32), label: 'cli' }, T0)
      const u = r.user
      assert.ok(Number.isInteger(u.id) && u.id > 0, `id ${u.id} is a positive integer`)
      assert.deepEqual(u, { id: u.id, name: 'ünïcode', tokenless: false, passwordHash: null, createdAt: T0 })
      assert.ok(Number.isInteger(r.device.id) && r.device.id > 0, `device id ${r.device.id} is a positive integer`)
      assert.deepEqual(r.device, {
        id: r.device.id,
        user: u.id,
        label: 'cli',
        tokenHash: 'ab'.repeat(32),
        createdAt: T0,
        lastSeen: undefined,
        acks: { floor: 0, above: [] },
      })
      assert.deepEqual(await store.userById(u.id), u)
      assert.deepEqual(await store.userByName('ünïcode'), u)
      assert.deepEqual(await store.deviceById(r.device.id), r.device)
      assert.deepEqual(await store.deviceByToken('ab'.repeat(32)), r.device)
      assert.deepEqual(await store.devices(u.id), [r.device])
      assert.equal(await store.userById(u.id + 1000), undefined)
      assert.equal(await store.userByName('nobody'), undefined)
      assert.equal(await store.deviceById(r.device.id + 1000), undefined)
      assert.equal(await store.deviceByToken('cd'.repeat(32)), undefined)
      assert.deepEqual(await store.devices(u.id + 1000), [])
    })

    test('a tokenless user: UserRecord.tokenless, and its only device has a null token', async (store) => {
      const r = await store.createUser('legacy', { tokenHash: null, label: 'gateway' }, T0)
      assert.equal(r.user.tokenless, true)
      assert.equal(r.device.tokenHash, null)
      assert.equal((await store.userById(r.user.id))?.tokenless, true)
      assert.equal((await store.userByName('legacy'))?.tokenless, true)
      assert.deepEqual(
        (await store.devices(r.user.id)).map((d) => [d.id, d.tokenHash]),
        [[r.device.id, null]],
      )
      // Two tokenless users: a null token is no conflict.
      const other = await store.createUser('legacy2', { tokenHash: null, label: 'gateway' }, T0)
      assert.equal(other.device.tokenHash, null)
      assert.notEqual(other.device.id, r.device.id)
      const withToken = await mkUser(store, 'registered')
      assert.equal(withToken.user.tokenless, false)
    })

    test('createUser with a password hash; setPassword changes and clears it', async (store) => {
      const a = await mkUser(store, 'alice', { password: 'scrypt$1$abc' })
      assert.equal(a.user.passwordHash, 'scrypt$1$abc')
      assert.equal((await store.userById(a.id))?.passwordHash, 'scrypt$1$abc')
      const b = await mkUser(store, 'bob')
      assert.equal((await store.userById(b.id))?.passwordHash, null)
      await store.setPassword(b.id, 'scrypt$1$def')
      assert.equal((await store.userByName('bob'))?.passwordHash, 'scrypt$1$def')
      await store.setPassword(a.id, null)
      assert.equal((await store.userById(a.id))?.passwordHash, null)
      assert.equal((await store.userById(b.id))?.passwordHash, 'scrypt$1$def', 'only the named user changes')
      await store.setPassword(424242, 'x') // an unknown user: nothing, no error
    })

    test('a seen op in a batch records the user’s and the device’s last seen with the batch, and answers in order', async (store, swap) => {
      const a = await mkUser(store, 'alice', { now: 1000 })
      const res = await store.commit([
        { type: 'seen', user: a.id, device: a.device, at: 4000 },
        send([copy(a.id)]),
        { type: 'seen', user: a.id, device: a.device, at: 6000 },
      ])
      assert.deepEqual(res[0], { type: 'seen' })
      assert.deepEqual(seqsOf(res[1]), [1])
      assert.deepEqual(res[2], { type: 'seen' })
      let s = store
      if (opts.reopen !== undefined) swap((s = await opts.reopen(store)))
      assert.equal(await s.lastSeen(a.id), 6000, 'the later one wins, and it is durable')
      assert.equal((await s.deviceById(a.device))?.lastSeen, 6000)
    })

    test('lastSeen is undefined until set, then the latest value; a device given gets it too', async (store) => {
      const a = await mkUser(store, 'alice', { now: 1000 })
      const b = await mkUser(store, 'bob', { now: 1000 })
      assert.equal(await store.lastSeen(a.id), undefined)
      await store.setLastSeen(a.id, 5000)
      await store.setLastSeen(a.id, 7000, a.device)
      assert.equal(await store.lastSeen(a.id), 7000)
      assert.equal(await store.lastSeen(a.id + 999), undefined)
      assert.equal((await store.deviceById(a.device))?.lastSeen, 7000)
      await store.setLastSeen(b.id, 8000, a.device) // a's device is not b's: only b's last seen changes
      assert.equal((await store.deviceById(a.device))?.lastSeen, 7000)
      assert.equal(await store.lastSeen(b.id), 8000)
      assert.equal((await store.deviceById(b.device))?.lastSeen, undefined)
    })

    test('ids are allocated increasing and never reused, even after the newest user is deleted', async (store) => {
      const a = await mkUser(store, 'a')
      const b = await mkUser(store, 'b')
      assert.ok(b.id > a.id)
      assert.ok(b.device > a.device)
      await store.deleteUser(b.id)
      const c = await mkUser(store, 'c')
      assert.ok(c.id > b.id, `id ${c.id} reuses or precedes the deleted ${b.id}`)
      assert.ok(c.device > b.device, `device id ${c.device} reuses or precedes the deleted ${b.device}`)
      await store.deleteUser(a.id)
      const d = await mkUser(store, 'a')
      assert.ok(d.id > c.id, 'a re-registered name gets a new id')
    })

    test('ids survive a restart (never reused across reopen)', async (store, swap) => {
      if (opts.reopen === undefined) return
      const a = await mkUser(store, 'a')
      await store.deleteUser(a.id)
      const reopened = await opts.reopen(store)
      swap(reopened)
      const b = await mkUser(reopened, 'b')
      assert.ok(b.id > a.id, `id ${b.id} after restart reuses ${a.id}`)
      assert.ok(b.device > a.device, `device id ${b.device} after restart reuses ${a.device}`)
      assert.equal(await reopened.userById(a.id), undefined)
    })

    test('names are unique: a second createUser throws SB_ERR_NAME_TAKEN and stores nothing', async (store) => {
      await mkUser(store, 'alice', { token: null })
      await rejectsNameTaken(store.createUser('alice', { tokenHash: 'ff'.repeat(32), label: 'x' }, T0))
      assert.equal(await store.countUsers(), 1)
      assert.equal((await store.userByName('alice'))?.tokenless, true)
      assert.equal(await store.deviceByToken('ff'.repeat(32)), undefined, 'no device was made either')
    })

    test('a look-alike of a name (same confusable skeleton) is taken: createUser and renameUser refuse it, naming the holder', async (store) => {
      const a = await mkUser(store, 'alice', { token: null })
      for (const like of ['Alice', 'ALICE', '\u0430lice', 'al\u0131ce', '\uff41\uff4c\uff49\uff43\uff45']) {
        const err = await rejectsNameTaken(mkUser(store, like))
        assert.match(err.message, /looks like "alice"/, like)
      }
      const b = await mkUser(store, 'bob', { token: null })
      await rejectsNameTaken(store.renameUser(b.id, 'ALICE'))
      assert.equal((await store.userById(b.id))?.name, 'bob')
      assert.equal((await store.userLike('\u0410LICE'))?.id, a.id)
      assert.equal(await store.userLike('carol'), undefined)
      await store.renameUser(a.id, 'Alice') // a change of case of one's own name is not a conflict
      assert.equal((await store.userById(a.id))?.name, 'Alice')
      await store.renameUser(a.id, 'alicia')
      assert.equal((await mkUser(store, 'ALICE')).user.name, 'ALICE', 'the skeleton is released with the name')
    })

    test('staleTokenless lists tokenless users neither seen nor created since a time, oldest first', async (store) => {
      const old = await mkUser(store, 'old', { token: null })
      const seen = await mkUser(store, 'seen', { token: null })
      await store.setLastSeen(seen.id, T0 + 5000)
      await mkUser(store, 'token')
      await mkUser(store, 'fresh', { token: null, now: T0 + 3000 })
      assert.deepEqual(
        (await store.staleTokenless(T0 + 4000, 10)).map((u) => u.name),
        ['old', 'fresh'],
      )
      assert.deepEqual(
        (await store.staleTokenless(T0 + 1, 10)).map((u) => u.id),
        [old.id],
      )
      assert.equal((await store.staleTokenless(T0 + 10_000, 1)).length, 1, 'at most limit')
      assert.ok((await store.staleTokenless(T0 + 10_000, 10)).every((u) => u.tokenless))
    })

    test('concurrent createUser of one name: exactly one wins', async (store) => {
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) => store.createUser('race', { tokenHash: tok(1000 + i), label: 'x' }, T0)),
      )
      const won = results.filter((r) => r.status === 'fulfilled')
      assert.equal(won.length, 1)
      for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as StoreError).code, 'NAME_TAKEN')
      assert.equal(await store.countUsers(), 1)
      const winner = (await store.userByName('race'))!
      assert.equal((await store.devices(winner.id)).length, 1, 'the losers left no device behind')
    })

    test('concurrent createUser of different names, one a look-alike of another: only the look-alike is refused', async (store) => {
      // The embedded store writes registrations that arrive together in one transaction: a clash refuses only itself.
      // Which of the look-alikes wins is the store's to decide (PostgreSQL runs them on separate connections).
      const names = ['ann', 'bob', 'b0b', 'cyd', 'dee']
      const results = await Promise.allSettled(
        names.map((n, i) => store.createUser(n, { tokenHash: tok(2000 + i), label: 'x' }, T0)),
      )
      const refusedAt = results.flatMap((r, i) => (r.status === 'rejected' ? [i] : []))
      assert.equal(refusedAt.length, 1, 'exactly one refused')
      const lost = refusedAt[0]!
      assert.ok(lost === 1 || lost === 2, `the refused one is a look-alike, not ${names[lost]}`)
      const won = lost === 1 ? 2 : 1
      const refused = results[lost] as PromiseRejectedResult
      assert.equal((refused.reason as StoreError).code, 'NAME_TAKEN')
      assert.ok((refused.reason as StoreError).message.includes(names[won]!), 'names the holder')
      const ids = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.user.id] : []))
      assert.equal(new Set(ids).size, 4)
      for (const [i, n] of names.entries()) {
        if (i === lost) continue
        const u = (await store.userByName(n))!
        assert.equal((await store.devices(u.id)).length, 1)
        assert.equal((await store.deviceByToken(tok(2000 + i)))?.user, u.id)
      }
      assert.equal(await store.deviceByToken(tok(2000 + lost)), undefined, 'the refused one left no device behind')
      assert.equal(await store.countUsers(), 4)
    })

    test('renameUser moves the name; the old name is free; a taken name throws SB_ERR_NAME_TAKEN', async (store) => {
      const a = await mkUser(store, 'alice')
      const b = await mkUser(store, 'bob')
      await store.renameUser(a.id, 'alicia')
      assert.equal((await store.userById(a.id))?.name, 'alicia')
      assert.equal(await store.userByName('alice'), undefined)
      assert.equal((await store.userByName('alicia'))?.id, a.id)
      await rejectsNameTaken(store.renameUser(b.id, 'alicia'))
      assert.equal((await store.userById(b.id))?.name, 'bob', 'a failed rename changes nothing')
      await store.renameUser(b.id, 'bob') // to its own name: not a conflict
      assert.equal((await store.userByName('bob'))?.id, b.id)
      const c = await mkUser(store, 'alice') // the old name is free again
      assert.notEqual(c.id, a.id)
      assert.equal((await store.deviceById(a.device))?.user, a.id, 'a rename keeps the devices')
    })

    test('concurrent renames to one name: exactly one wins, the others keep their names', async (store) => {
      const users = await Promise.all(['u1', 'u2', 'u3', 'u4'].map((n) => mkUser(store, n)))
      const results = await Promise.allSettled(users.map((u) => store.renameUser(u.id, 'prize')))
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1)
      for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as StoreError).code, 'NAME_TAKEN')
      const winner = await store.userByName('prize')
      assert.ok(winner !== undefined)
      for (const [i, u] of users.entries())
        assert.equal((await store.userById(u.id))?.name, u.id === winner.id ? 'prize' : `u${i + 1}`)
    })

    test('rename racing a registration of the same name: exactly one gets it', async (store) => {
      const a = await mkUser(store, 'a')
      const results = await Promise.allSettled([store.renameUser(a.id, 'contested'), mkUser(store, 'contested')])
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1)
      const holder = await store.userByName('contested')
      assert.ok(holder !== undefined)
      assert.equal(await store.countUsers(), results[1]!.status === 'fulfilled' ? 2 : 1)
    })

    test('countUsers counts live users', async (store) => {
      assert.equal(await store.countUsers(), 0)
      const a = await mkUser(store, 'a')
      await mkUser(store, 'b')
      assert.equal(await store.countUsers(), 2)
      await store.deleteUser(a.id)
      assert.equal(await store.countUsers(), 1)
    })

    test('deleteUser returns the unacknowledged messages in seq order and drops log, held, devices, subscriptions, blocks', async (store) => {
      const u = await mkUser(store, 'doomed')
      const other = await mkUser(store, 'other')
      const second = await store.createDevice(u.id, tok(9999), 'web', T0)
      assert.ok(second !== undefined)
      const c1 = copy(u.id, { body: Buffer.from('one') })
      const c2 = copy(u.id, { body: Buffer.from('two'), topic: 'news' })
      const c3 = copy(u.id, { body: Buffer.from('three'), peer: other.id })
      await store.commit([
        send([copy(u.id, { body: Buffer.from('acked') })]),
        send([c1]),
        send([sentCopy(u, other.id)]),
        send([c2]),
        send([copy(u.id, { notBefore: T0 + 60_000 })]),
        send([c3]),
      ])
      await store.commit([ack(u, 1)])
      await store.subscribe(u.id, 'news')
      await store.block(u.id, other.id)
      await store.block(other.id, u.id)
      const dropped = await store.deleteUser(u.id)
      assert.deepEqual(
        dropped.map((m) => m.seq),
        [2, 4, 5],
        'held messages, acknowledged ones and sent copies are not returned',
      )
      assertSameMessage(dropped[0], { ...c1, seq: 2 })
      assertSameMessage(dropped[1], { ...c2, seq: 4 })
      assertSameMessage(dropped[2], { ...c3, seq: 5 })
      assert.equal(await store.userById(u.id), undefined)
      assert.equal(await store.userByName('doomed'), undefined)
      assert.equal(await store.deviceById(u.device), undefined)
      assert.equal(await store.deviceByToken(u.dev.tokenHash!), undefined, 'its tokens no longer work')
      assert.equal(await store.deviceByToken(tok(9999)), undefined)
      assert.deepEqual(await store.devices(u.id), [])
      assert.deepEqual(await store.subscribers('news'), [])
      assert.deepEqual(await store.blocked(other.id), [], 'blocks naming the deleted user go too')
      assert.deepEqual(await store.readLog(u.id, 0, 100, T0), [])
      assert.deepEqual(await store.history(u.id, { before: 0, limit: 100 }), [])
      assert.deepEqual(await store.queueStats(u.id), { count: 0, bytes: 0 })
      assert.deepEqual(await store.releaseDue(T0 + 120_000, 100), [], 'its held messages are gone')
      // A deleted user cannot receive: the copy answers 0 and nothing is stored.
      assert.deepEqual(seqsOf((await store.commit([send([copy(u.id)])]))[0]), [0])
      assert.deepEqual(ackOf((await store.commit([ack(u, 2)]))[0]), { first: null, fresh: false })
      // A new user with the same name starts from an empty log at seq 1.
      const again = await mkUser(store, 'doomed')
      assert.equal(await sendOne(store, copy(again.id)), 1)
      assert.equal((await store.deviceById(other.device))?.user, other.id, 'other users keep their devices')
    })

    test('deleteUser of an unknown id returns [] and does not throw', async (store) => {
      assert.deepEqual(await store.deleteUser(424242), [])
    })

    // ------------------------------------------------------------------ devices

    test('createDevice: a new device starts at the live end of the log, the first one at 0', async (store) => {
      const a = await mkUser(store, 'a')
      assert.deepEqual(await cursor(store, a.device), { floor: 0, above: [] })
      const limits = { maxCount: 3, maxBytes: 1 << 20 }
      await store.commit([
        send([copy(a.id)], limits),
        send([copy(a.id, { notBefore: T0 + 1000 })], limits), // held: no seq yet
        send([copy(a.id)], limits),
        send([copy(a.id)], limits),
        send([copy(a.id)], limits), // refused: takes no seq
      ])
      const d = await store.createDevice(a.id, tok(7777), 'web', T0 + 5)
      assert.ok(d !== undefined)
      assert.deepEqual(d, {
        id: d.id,
        user: a.id,
        label: 'web',
        tokenHash: tok(7777),
        createdAt: T0 + 5,
        lastSeen: undefined,
        acks: { floor: 3, above: [] },
      })
      assert.notEqual(d.id, a.device)
      assert.deepEqual(await store.deviceById(d.id), d)
      assert.deepEqual(await store.deviceByToken(tok(7777)), d)
      assert.deepEqual(
        (await store.devices(a.id)).map((x) => [x.id, x.label, x.acks.floor]),
        [
          [a.device, 'test', 0],
          [d.id, 'web', 3],
        ],
      )
      assert.equal(await store.createDevice(424242, tok(7778), 'web', T0), undefined, 'no such user')
      assert.equal(await store.deviceByToken(tok(7778)), undefined)
      // The new device has acknowledged nothing: it does not free any room, and its ack of a past seq is not first.
      assert.deepEqual((await store.queueStats(a.id)).count, 3)
    })

    test('deleteDevice revokes a device of its user only; its token is no longer found', async (store) => {
      const a = await mkUser(store, 'a')
      const b = await mkUser(store, 'b')
      const d = (await store.createDevice(a.id, tok(5555), 'phone', T0))!
      assert.equal(await store.deleteDevice(b.id, d.id), false, "another user's device")
      assert.equal(await store.deleteDevice(b.id, a.device), false)
      assert.deepEqual(await store.deviceByToken(tok(5555)), d, 'still there')
      assert.equal(await store.deleteDevice(a.id, d.id), true)
      assert.equal(await store.deleteDevice(a.id, d.id), false, 'already gone')
      assert.equal(await store.deviceByToken(tok(5555)), undefined)
      assert.equal(await store.deviceById(d.id), undefined)
      assert.deepEqual(
        (await store.devices(a.id)).map((x) => x.id),
        [a.device],
      )
      assert.deepEqual(
        (await store.devices(b.id)).map((x) => x.id),
        [b.device],
      )
      await sendOne(store, copy(a.id))
      assert.deepEqual(
        ackOf((await store.commit([ack(a, 1, d.id)]))[0]),
        { first: null, fresh: false },
        'a revoked device acks nothing',
      )
      assert.equal((await store.queueStats(a.id)).count, 1)
    })

    test('devices: ids are unique across users and the list is by id', async (store) => {
      const a = await mkUser(store, 'a')
      const b = await mkUser(store, 'b')
      const a2 = (await store.createDevice(a.id, tok(1), 'x', T0))!
      const b2 = (await store.createDevice(b.id, tok(2), 'y', T0))!
      const a3 = (await store.createDevice(a.id, tok(3), 'z', T0))!
      const ids = [a.device, b.device, a2.id, b2.id, a3.id]
      assert.equal(new Set(ids).size, ids.length)
      assert.deepEqual(
        (await store.devices(a.id)).map((d) => d.id),
        [a.device, a2.id, a3.id].sort((x, y) => x - y),
      )
      assert.deepEqual((await store.deviceByToken(tok(2)))?.user, b.id)
    })

    // ------------------------------------------------------------------ commit: sends

    test('commit: seqs start at 1 and are gap-free per recipient, within and across batches', async (store) => {
      const a = await mkUser(store, 'a')
      const b = await mkUser(store, 'b')
      const r1 = await store.commit([send([copy(a.id), copy(b.id)]), send([copy(a.id)]), send([copy(a.id)])])
      assert.equal(r1.length, 3)
      assert.deepEqual(seqsOf(r1[0]), [1, 1])
      assert.deepEqual(seqsOf(r1[1]), [2])
      assert.deepEqual(seqsOf(r1[2]), [3])
      const r2 = await store.commit([send([copy(b.id)]), send([copy(a.id)])])
      assert.deepEqual(seqsOf(r2[0]), [2])
      assert.deepEqual(seqsOf(r2[1]), [4])
      assert.deepEqual(await seqs(store, a.id), [1, 2, 3, 4])
    })

    test('commit: seqs keep growing after acks (an acknowledged seq is never handed out again)', async (store) => {
      const a = await mkUser(store, 'a')
      assert.equal(await sendOne(store, copy(a.id)), 1)
      assert.equal(await sendOne(store, copy(a.id)), 2)
      await store.commit([ack(a, 1), ack(a, 2)])
      assert.equal(await sendOne(store, copy(a.id)), 3)
    })

    test('commit: seqs survive a restart', async (store, swap) => {
      if (opts.reopen === undefined) return
      const a = await mkUser(store, 'a')
      await sendOne(store, copy(a.id))
      await sendOne(store, copy(a.id))
      await store.commit([ack(a, 2)])
      const reopened = await opts.reopen(store)
      swap(reopened)
      assert.equal(await sendOne(reopened, copy(a.id)), 3)
      assert.deepEqual(await seqs(reopened, a.id), [1, 2, 3], 'an acknowledged message stays in the log')
      assert.deepEqual(await reopened.queueStats(a.id), { count: 2, bytes: 10 })
    })

    test('queue counters are right after a restart whose first operation is an ack or an expiry', async (store, swap) => {
      if (opts.reopen === undefined) return
      const a = await mkUser(store, 'a')
      await store.commit([send([copy(a.id)]), send([copy(a.id)]), send([copy(a.id, { expiresAt: T0 })]), send([copy(a.id)])])
      let s = await opts.reopen(store)
      swap(s)
      await s.commit([ack(a, 1)])
      assert.deepEqual(await s.queueStats(a.id), { count: 3, bytes: 15 })
      s = await opts.reopen(s)
      swap(s)
      assert.equal((await s.expire(T0, 10)).length, 1)
      assert.deepEqual(await s.queueStats(a.id), { count: 2, bytes: 10 })
      // The limit sees the true count: two unacknowledged, room for exactly one more under maxCount 3.
      const res = await s.commit([
        send([copy(a.id)], { maxCount: 3, maxBytes: 1 << 20 }),
        send([copy(a.id)], { maxCount: 3, maxBytes: 1 << 20 }),
      ])
      assert.deepEqual(
        res.map((r) => seqsOf(r)[0]),
        [5, 0],
      )
    })

    test('commit: every field of a copy round-trips (binary body, topic, expiry, notBefore in the past, fileId, peer, device)', async (store) => {
      const a = await mkUser(store, 'a')
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
      const c5 = copy(a.id, { from: 77, peer: 77 })
      const c6 = sentCopy(a, 0xfffffff0, { msgId: 0xfffffff1, flags: SENT | 3 })
      const res = await store.commit([send([c1]), send([c2, c3, c4]), send([c5, c6])])
      assert.deepEqual(seqsOf(res[0]), [1])
      assert.deepEqual(seqsOf(res[1]), [2, 3, 4])
      assert.deepEqual(seqsOf(res[2]), [5, 6])
      const q = await store.readLog(a.id, 0, 10, T0)
      assert.equal(q.length, 6)
      assertSameMessage(q[0], { ...c1, seq: 1 })
      assertSameMessage(q[1], { ...c2, seq: 2 })
      assertSameMessage(q[2], { ...c3, seq: 3 })
      assertSameMessage(q[3], { ...c4, seq: 4 })
      assertSameMessage(q[4], { ...c5, seq: 5 })
      assertSameMessage(q[5], { ...c6, seq: 6 })
      assert.ok(!('peer' in q[0]!) && !('device' in q[4]!), 'an absent optional field is left out, not undefined')
    })

    test('commit: results answer ops in order, sends, acks and reads mixed', async (store) => {
      const a = await mkUser(store, 'a')
      await sendOne(store, copy(a.id))
      const res = await store.commit([ack(a, 1), send([copy(a.id)]), ack(a, 99), read(a, 2), send([copy(a.id)])])
      assert.equal(res.length, 5)
      assert.equal(firstOf(res[0])?.seq, 1)
      assert.deepEqual(seqsOf(res[1]), [2])
      assert.deepEqual(ackOf(res[2]), { first: null, fresh: false })
      assert.equal(readOf(res[3])?.seq, 2)
      assert.deepEqual(seqsOf(res[4]), [3])
    })

    test('commit: an empty batch resolves to []', async (store) => {
      assert.deepEqual(await store.commit([]), [])
    })

    test('commit: a copy to an unknown user answers 0 and does not disturb the others', async (store) => {
      const a = await mkUser(store, 'a')
      const res = await store.commit([send([copy(a.id), copy(987654), copy(a.id)])])
      assert.deepEqual(seqsOf(res[0]), [1, 0, 2])
      assert.deepEqual(await store.queueStats(987654), { count: 0, bytes: 0 })
    })

    test('commit: an ack of a message committed earlier in the same batch is first; a second ack is not', async (store) => {
      const a = await mkUser(store, 'a')
      const c = copy(a.id)
      const res = await store.commit([send([c]), ack(a, 1), ack(a, 1)])
      assert.deepEqual(seqsOf(res[0]), [1])
      assertSameMessage(firstOf(res[1]), { ...c, seq: 1 })
      assert.equal(ackOf(res[1]).fresh, true)
      assert.deepEqual(ackOf(res[2]), { first: null, fresh: false }, 'the same device again')
      assert.deepEqual(await seqs(store, a.id), [1], 'the row stays in the log')
      assert.deepEqual(await store.queueStats(a.id), { count: 0, bytes: 0 })
      assert.deepEqual(await cursor(store, a.device), { floor: 1, above: [] })
    })

    test('commit: an ack that comes before the send of that seq in a batch acknowledges nothing', async (store) => {
      const a = await mkUser(store, 'a')
      const res = await store.commit([ack(a, 1), send([copy(a.id)])])
      assert.deepEqual(ackOf(res[0]), { first: null, fresh: false })
      assert.deepEqual(seqsOf(res[1]), [1])
      assert.equal((await store.queueStats(a.id)).count, 1)
      assert.deepEqual(await cursor(store, a.device), { floor: 0, above: [] })
      assert.equal(firstOf((await store.commit([ack(a, 1)]))[0])?.seq, 1, 'a later ack is first')
    })

    test('commit: concurrent batches to one recipient still give gap-free distinct seqs', async (store) => {
      const a = await mkUser(store, 'a')
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
        const a = await mkUser(store, 'a')
        const b = await mkUser(other, 'b')
        assert.notEqual(a.id, b.id)
        assert.notEqual(a.device, b.device)
        await rejectsNameTaken(mkUser(other, 'a'))
        const [r1, r2] = await Promise.all([
          store.commit(Array.from({ length: 20 }, () => send([copy(a.id), copy(b.id)]))),
          other.commit(Array.from({ length: 20 }, () => send([copy(a.id), copy(b.id)]))),
        ])
        for (const idx of [0, 1]) {
          const all = [...r1, ...r2].map((r) => seqsOf(r)[idx]!).sort((x, y) => x - y)
          assert.deepEqual(
            all,
            Array.from({ length: 40 }, (_, i) => i + 1),
          )
        }
        assert.deepEqual(await other.queueStats(a.id), { count: 40, bytes: 200 })
        // Two devices of one user acknowledging on two nodes at once: one is first.
        const d2 = (await other.createDevice(a.id, tok(4242), 'web', T0))!
        const [x, y] = await Promise.all([store.commit([ack(a, 1)]), other.commit([ack(a, 1, d2.id)])])
        // d2 started at the live end (floor 40), so its ack of 1 is not fresh; a's device is first.
        assert.equal(firstOf(x[0])?.seq, 1)
        assert.deepEqual(ackOf(y[0]), { first: null, fresh: false })
        assert.deepEqual(await store.queueStats(a.id), { count: 39, bytes: 195 })
      } finally {
        await other.close()
      }
    })

    // ------------------------------------------------------------------ commit: limits

    test('queue limits: a copy beyond maxCount answers 0, stores nothing and takes no seq', async (store) => {
      const a = await mkUser(store, 'a')
      const b = await mkUser(store, 'b')
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
      const res2 = await store.commit([ack(a, 1), send([copy(a.id)], limits), send([copy(a.id)], limits)])
      assert.equal(firstOf(res2[0])?.seq, 1)
      assert.deepEqual(seqsOf(res2[1]), [3])
      assert.deepEqual(seqsOf(res2[2]), [0])
      assert.deepEqual(await seqs(store, a.id), [1, 2, 3])
      assert.deepEqual(await store.queueStats(a.id), { count: 2, bytes: 10 })
    })

    test('queue limits: maxBytes counts body bytes; exactly at the limit is allowed', async (store) => {
      const a = await mkUser(store, 'a')
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
      const a = await mkUser(store, 'a')
      const b = await mkUser(store, 'b')
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

    test('queue limits count what no device acknowledged: one device acknowledging frees the room', async (store) => {
      const a = await mkUser(store, 'a')
      const d2 = (await store.createDevice(a.id, tok(321), 'web', T0))!
      const limits = { maxCount: 1, maxBytes: 1 << 20 }
      assert.equal(await sendOne(store, copy(a.id), limits), 1)
      assert.equal(await sendOne(store, copy(a.id), limits), 0)
      await store.commit([ack(a, 1, d2.id)])
      assert.equal(await sendOne(store, copy(a.id), limits), 2, 'the other device need not acknowledge')
    })

    test('dedupe: a key given back by a send that stored nothing may be claimed again later in the batch', async (store) => {
      const a = await mkUser(store, 'a')
      const limits = { maxCount: 1, maxBytes: 1 << 20 }
      assert.equal(await sendOne(store, copy(a.id), limits), 1)
      const key = { sender: 4, msgId: 4 }
      const res = await store.commit([
        send([copy(a.id)], limits, key),
        ack(a, 1),
        send([copy(a.id)], limits, key),
        send([copy(a.id)], limits, key),
      ])
      assert.deepEqual(seqsOf(res[0]), [0], 'refused: the queue is full')
      assert.deepEqual(seqsOf(res[2]), [2], 'the retry after the ack is stored, not a duplicate')
      assert.deepEqual(res[3], { type: 'send', duplicate: true })
      assert.deepEqual(await store.commit([send([copy(a.id)], NO_LIMIT, key)]), [{ type: 'send', duplicate: true }])
    })

    test('queue limits: an ack earlier in the batch frees room for a later send; a later ack does not', async (store) => {
      const a = await mkUser(store, 'a')
      const limits = { maxCount: 1, maxBytes: 1 << 20 }
      assert.equal(await sendOne(store, copy(a.id), limits), 1)
      const res = await store.commit([send([copy(a.id)], limits), ack(a, 1), send([copy(a.id)], limits)])
      assert.deepEqual(seqsOf(res[0]), [0])
      assert.equal(firstOf(res[1])?.seq, 1)
      assert.deepEqual(seqsOf(res[2]), [2])
    })

    test('queueStats follows sends, acks, expiry and release', async (store) => {
      const a = await mkUser(store, 'a')
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
      await store.commit([ack(a, 1)])
      assert.deepEqual(await store.queueStats(a.id), { count: 1, bytes: 5 })
    })

    // ------------------------------------------------------------------ commit: sent copies

    test('sent copies: a seq at once, never refused by the limits, never held, not counted by queueStats', async (store) => {
      const a = await mkUser(store, 'a')
      const b = await mkUser(store, 'b')
      const d2 = (await store.createDevice(a.id, tok(4040), 'web', T0))!
      const full = { maxCount: 1, maxBytes: 5 }
      assert.equal(await sendOne(store, copy(a.id), full), 1)
      assert.equal(await sendOne(store, copy(a.id), full), 0, 'the queue is at its limit')
      const s1 = sentCopy(a, b.id, { body: Buffer.alloc(100) })
      const s2 = sentCopy(a, b.id, { notBefore: T0 + 60_000 })
      const res = await store.commit([send([copy(b.id), s1], full), send([s2], full)])
      assert.deepEqual(seqsOf(res[0]), [1, 2])
      assert.deepEqual(seqsOf(res[1]), [3], 'a sent copy is not held for its notBefore')
      assert.deepEqual(await store.queueStats(a.id), { count: 1, bytes: 5 })
      assert.deepEqual(await seqs(store, a.id), [1, 2, 3])
      assertSameMessage((await store.readLog(a.id, 1, 1, T0))[0], { ...s1, seq: 2 })
      // The device it was sent from has it at once (no hole in its cursor)...
      assert.deepEqual(await cursor(store, a.device), { floor: 0, above: [[2, 3]] })
      assert.deepEqual(ackOf((await store.commit([ack(a, 2)]))[0]), { first: null, fresh: false })
      // ...and it is handled from the start: another device's ack moves that cursor but is never first.
      assert.deepEqual(ackOf((await store.commit([ack(a, 2, d2.id)]))[0]), { first: null, fresh: true })
      assert.deepEqual(await store.queueStats(a.id), { count: 1, bytes: 5 })
      assert.deepEqual(await cursor(store, d2.id), { floor: 0, above: [[2, 2]] })
    })

    test("sent copies: the sending device's cursor takes the seq in the same commit, and keeps it over a restart", async (store, swap) => {
      const a = await mkUser(store, 'a')
      const b = await mkUser(store, 'b')
      const d2 = (await store.createDevice(a.id, tok(8080), 'web', T0))!
      const res = await store.commit([
        send([copy(a.id)]), // 1: received
        send([copy(b.id), sentCopy(a, b.id)]), // 2: sent from a's first device
        send([copy(b.id), sentCopy({ id: a.id, device: d2.id }, b.id)]), // 3: sent from d2
        ack(a, 1),
      ])
      assert.deepEqual(seqsOf(res[1]), [1, 2])
      assert.deepEqual(seqsOf(res[2]), [2, 3])
      assert.deepEqual(await cursor(store, a.device), { floor: 2, above: [] })
      assert.deepEqual(await cursor(store, d2.id), { floor: 0, above: [[3, 3]] })
      let s = store
      if (opts.reopen !== undefined) {
        s = await opts.reopen(store)
        swap(s)
      }
      assert.deepEqual(await cursor(s, a.device), { floor: 2, above: [] })
      assert.deepEqual(await cursor(s, d2.id), { floor: 0, above: [[3, 3]] })
      assert.deepEqual(await cursor(s, b.device), { floor: 0, above: [] }, "the recipient's cursor is not the sender's")
    })

    test('sent copies do not count as stored for dedupe: every real copy refused gives the key back', async (store) => {
      const a = await mkUser(store, 'a')
      const b = await mkUser(store, 'b')
      const full = { maxCount: 1, maxBytes: 1 << 20 }
      assert.equal(await sendOne(store, copy(b.id), full), 1)
      const key = { sender: a.id, msgId: 5 }
      const r1 = await store.commit([send([copy(b.id), sentCopy(a, b.id)], full, key)])
      assert.deepEqual(r1[0], { type: 'send', duplicate: false, seqs: [0, 1], refused: ['queue-length', null] })
      await store.commit([ack(b, 1)])
      const r2 = await store.commit([send([copy(b.id), sentCopy(a, b.id)], full, key)])
      assert.deepEqual(seqsOf(r2[0]), [2, 2], 'the retry is stored')
    })

    // ------------------------------------------------------------------ commit: held messages

    test('held: notBefore in the future answers -1; releaseDue gives seqs in notBefore order', async (store) => {
      const a = await mkUser(store, 'a')
      const late = copy(a.id, { notBefore: T0 + 300, body: Buffer.from('late'), peer: 1 })
      const early = copy(a.id, { notBefore: T0 + 100, body: Buffer.from('early') })
      const res = await store.commit([send([late]), send([early]), send([copy(a.id)])])
      assert.deepEqual(
        res.map((r) => seqsOf(r)[0]),
        [-1, -1, 1],
      )
      assert.deepEqual(await seqs(store, a.id, 0, T0 + 1000), [1], 'held messages are not in the log yet')
      assert.deepEqual(await store.releaseDue(T0 + 99, 10), [], 'nothing is due yet')
      const first = await store.releaseDue(T0 + 100, 10)
      assert.equal(first.length, 1)
      assertSameMessage(first[0], { ...early, seq: 2 })
      assert.equal(await sendOne(store, copy(a.id)), 3, 'a release takes the next seq, like a send')
      const second = await store.releaseDue(T0 + 1000, 10)
      assert.equal(second.length, 1)
      assertSameMessage(second[0], { ...late, seq: 4 })
      assert.deepEqual(await store.releaseDue(T0 + 1000, 10), [], 'released once only')
      const q = await store.readLog(a.id, 0, 10, T0 + 1000)
      assert.deepEqual(
        q.map((m) => m.body.toString()),
        ['hello', 'early', 'hello', 'late'],
      )
      assertSameMessage(q[3], { ...late, seq: 4 })
      assert.equal(firstOf((await store.commit([ack(a, 4)]))[0])?.seq, 4, 'a released message is acknowledged like any')
    })

    test('held: releaseDue honours its limit and releases ties in commit order', async (store) => {
      const a = await mkUser(store, 'a')
      const b = await mkUser(store, 'b')
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
        (await store.readLog(a.id, 0, 10, T0)).map((m) => [m.seq, m.body.toString()]),
        [
          [1, 'm0'],
          [2, 'm2'],
          [3, 'm4'],
        ],
      )
      assert.deepEqual(
        (await store.readLog(b.id, 0, 10, T0)).map((m) => [m.seq, m.body.toString()]),
        [
          [1, 'm1'],
          [2, 'm3'],
        ],
      )
    })

    // ------------------------------------------------------------------ commit: dedupe

    test('dedupe: a second send with the same key is a duplicate and stores nothing', async (store) => {
      const a = await mkUser(store, 'a')
      const key = { sender: 5, msgId: 42 }
      const r1 = await store.commit([send([copy(a.id, { from: 5, msgId: 42 })], NO_LIMIT, key)])
      assert.deepEqual(seqsOf(r1[0]), [1])
      const r2 = await store.commit([send([copy(a.id, { from: 5, msgId: 42 })], NO_LIMIT, key)])
      assert.deepEqual(r2, [{ type: 'send', duplicate: true }])
      assert.deepEqual(await store.queueStats(a.id), { count: 1, bytes: 5 })
      // The key outlives the acknowledgement: an acknowledged message retried is still a duplicate.
      await store.commit([ack(a, 1)])
      assert.deepEqual(await store.commit([send([copy(a.id)], NO_LIMIT, key)]), [{ type: 'send', duplicate: true }])
      assert.equal(await sendOne(store, copy(a.id)), 2, 'the duplicate took no seq')
    })

    test('dedupe: within one batch the first send wins; other keys and key-less sends are independent', async (store) => {
      const a = await mkUser(store, 'a')
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
      const a = await mkUser(store, 'a')
      const b = await mkUser(store, 'b')
      const key = { sender: 9, msgId: 9 }
      const op = () => send([copy(a.id, { topic: 't' }), copy(b.id, { topic: 't' })], NO_LIMIT, key)
      assert.deepEqual(seqsOf((await store.commit([op()]))[0]), [1, 1])
      assert.deepEqual(await store.commit([op()]), [{ type: 'send', duplicate: true }])
      assert.equal((await store.queueStats(b.id)).count, 1)
    })

    test('dedupe: concurrent retries of one key store it once', async (store) => {
      const a = await mkUser(store, 'a')
      const key = { sender: 3, msgId: 77 }
      const res = await Promise.all(Array.from({ length: 6 }, () => store.commit([send([copy(a.id)], NO_LIMIT, key)])))
      assert.equal(res.filter((r) => r[0]?.type === 'send' && !r[0].duplicate).length, 1)
      assert.deepEqual(await store.queueStats(a.id), { count: 1, bytes: 5 })
    })

    test('pruneDedupe forgets keys recorded before the cut-off and counts them', async (store) => {
      const a = await mkUser(store, 'a')
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

    test('ack: first returns the whole row and keeps it in the log; a repeat is neither first nor fresh', async (store) => {
      const a = await mkUser(store, 'a')
      const c = copy(a.id, { topic: 'x', flags: 1, expiresAt: T0 + 5000, fileId: 'fid', body: Buffer.from([9, 8, 7]) })
      await sendOne(store, c)
      const r1 = ackOf((await store.commit([ack(a, 1)]))[0])
      assertSameMessage(r1.first, { ...c, seq: 1 })
      assert.equal(r1.fresh, true)
      assert.deepEqual(ackOf((await store.commit([ack(a, 1)]))[0]), { first: null, fresh: false })
      assertSameMessage((await store.readLog(a.id, 0, 10, T0))[0], { ...c, seq: 1 })
      assert.deepEqual(await store.queueStats(a.id), { count: 0, bytes: 0 })
    })

    test('ack of nothing: unknown user, unknown or foreign device, seq 0 or not handed out', async (store) => {
      const a = await mkUser(store, 'a')
      const b = await mkUser(store, 'b')
      await sendOne(store, copy(a.id))
      const nothing = { first: null, fresh: false }
      const res = await store.commit([
        { type: 'ack', user: 999_999, device: a.device, seq: 1 },
        ack(a, 1, b.device),
        ack(a, 1, 999_999),
        ack(a, 0),
        ack(a, 2),
      ])
      for (const r of res) assert.deepEqual(ackOf(r), nothing)
      assert.deepEqual(await cursor(store, a.device), { floor: 0, above: [] })
      assert.deepEqual(await cursor(store, b.device), { floor: 0, above: [] })
      assert.equal((await store.queueStats(a.id)).count, 1)
      assert.equal(firstOf((await store.commit([ack(a, 1)]))[0])?.seq, 1, 'still unacknowledged')
    })

    test('ack by two devices of one user: the first is told the message, the second null but fresh', async (store) => {
      const a = await mkUser(store, 'a')
      const d2 = (await store.createDevice(a.id, tok(111), 'web', T0))!
      const c1 = copy(a.id)
      const c2 = copy(a.id)
      await store.commit([send([c1]), send([c2])])
      const r1 = ackOf((await store.commit([ack(a, 1)]))[0])
      assertSameMessage(r1.first, { ...c1, seq: 1 })
      assert.equal(r1.fresh, true)
      // d2 was made before the sends: it starts at 0 and has not acknowledged seq 1.
      assert.deepEqual(ackOf((await store.commit([ack(a, 1, d2.id)]))[0]), { first: null, fresh: true })
      assert.deepEqual(ackOf((await store.commit([ack(a, 1, d2.id)]))[0]), { first: null, fresh: false })
      // In one batch: the earlier op is first.
      const res = await store.commit([ack(a, 2, d2.id), ack(a, 2), ack(a, 2, d2.id)])
      assertSameMessage(firstOf(res[0]), { ...c2, seq: 2 })
      assert.deepEqual(ackOf(res[1]), { first: null, fresh: true })
      assert.deepEqual(ackOf(res[2]), { first: null, fresh: false })
      assert.deepEqual(await cursor(store, a.device), { floor: 2, above: [] })
      assert.deepEqual(await cursor(store, d2.id), { floor: 2, above: [] })
      assert.deepEqual(await store.queueStats(a.id), { count: 0, bytes: 0 })
    })

    test('ack: out-of-order acks keep a floor and ranges; the cursor survives a restart', async (store, swap) => {
      const a = await mkUser(store, 'a')
      await store.commit(Array.from({ length: 5 }, () => send([copy(a.id)])))
      await store.commit([ack(a, 3)])
      assert.deepEqual(await cursor(store, a.device), { floor: 0, above: [[3, 3]] })
      await store.commit([ack(a, 1), ack(a, 5)])
      assert.deepEqual(await cursor(store, a.device), {
        floor: 1,
        above: [
          [3, 3],
          [5, 5],
        ],
      })
      assert.deepEqual(await store.queueStats(a.id), { count: 2, bytes: 10 })
      let s = store
      if (opts.reopen !== undefined) {
        s = await opts.reopen(store)
        swap(s)
      }
      assert.deepEqual(await cursor(s, a.device), {
        floor: 1,
        above: [
          [3, 3],
          [5, 5],
        ],
      })
      assert.equal(firstOf((await s.commit([ack(a, 2)]))[0])?.seq, 2)
      assert.deepEqual(await cursor(s, a.device), { floor: 3, above: [[5, 5]] })
      if (opts.reopen !== undefined) {
        s = await opts.reopen(s)
        swap(s)
      }
      assert.deepEqual((await s.deviceById(a.device))?.acks, { floor: 3, above: [[5, 5]] })
      assert.deepEqual(ackOf((await s.commit([ack(a, 3)]))[0]), { first: null, fresh: false })
      assert.deepEqual(await s.queueStats(a.id), { count: 1, bytes: 5 })
    })

    test('ack is per user: the same seq of another user is untouched', async (store) => {
      const a = await mkUser(store, 'a')
      const b = await mkUser(store, 'b')
      await store.commit([send([copy(a.id), copy(b.id)])])
      await store.commit([ack(a, 1)])
      assert.equal((await store.queueStats(b.id)).count, 1)
      assert.equal(firstOf((await store.commit([ack(b, 1)]))[0])?.to, b.id)
    })

    test('concurrent acks of one message by several devices: exactly one is first', async (store) => {
      const a = await mkUser(store, 'a')
      const devices = [a.device]
      for (let i = 0; i < 4; i++) devices.push((await store.createDevice(a.id, tok(600 + i), 'd', T0))!.id)
      await sendOne(store, copy(a.id))
      const res = await Promise.all(devices.map((d) => store.commit([ack(a, 1, d)])))
      assert.equal(res.filter((r) => firstOf(r[0]) !== null).length, 1)
      // Every device was made before the send: each one's ack is fresh, whichever is first.
      assert.ok(res.every((r) => ackOf(r[0]).fresh))
      assert.deepEqual(await store.queueStats(a.id), { count: 0, bytes: 0 })
    })

    // ------------------------------------------------------------------ read

    test('read: the first read of a message returns it, later ones (same batch or later) null', async (store) => {
      const a = await mkUser(store, 'a')
      const c = copy(a.id, { flags: 2 })
      await store.commit([send([c]), send([copy(a.id)])])
      const res = await store.commit([read(a, 1), read(a, 1)])
      assertSameMessage(readOf(res[0]), { ...c, seq: 1 })
      assert.equal(readOf(res[1]), null)
      assert.equal(readOf((await store.commit([read(a, 1)]))[0]), null)
      assert.equal(readOf((await store.commit([read(a, 99)]))[0]), null, 'no such row')
      assert.equal(readOf((await store.commit([{ type: 'read', user: 999_999, seq: 1 }]))[0]), null, 'no such user')
      // A read is not an acknowledgement: it neither frees room nor moves a cursor...
      assert.deepEqual(await store.queueStats(a.id), { count: 2, bytes: 10 })
      assert.deepEqual(await cursor(store, a.device), { floor: 0, above: [] })
      // ...and an acknowledgement is not a read.
      await store.commit([ack(a, 2)])
      assert.equal(readOf((await store.commit([read(a, 2)]))[0])?.seq, 2)
    })

    test('read: a message sent earlier in the same batch can be read in it', async (store) => {
      const a = await mkUser(store, 'a')
      const c = copy(a.id)
      const res = await store.commit([read(a, 1), send([c]), read(a, 1), read(a, 1)])
      assert.equal(readOf(res[0]), null, 'not there yet')
      assertSameMessage(readOf(res[2]), { ...c, seq: 1 })
      assert.equal(readOf(res[3]), null)
      assert.equal(readOf((await store.commit([read(a, 1)]))[0]), null)
    })

    // ------------------------------------------------------------------ readLog and expire

    test('readLog: oldest first, after afterSeq, at most limit, acknowledged or not', async (store) => {
      const a = await mkUser(store, 'a')
      const b = await mkUser(store, 'b')
      await store.commit(Array.from({ length: 10 }, (_, i) => send([copy(a.id, { body: Buffer.from(`m${i + 1}`) }), copy(b.id)])))
      const q = await store.readLog(a.id, 0, 100, T0)
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
        (await store.readLog(a.id, 4, 3, T0)).map((m) => m.seq),
        [5, 6, 7],
      )
      assert.deepEqual(
        (await store.readLog(a.id, 10, 5, T0)).map((m) => m.seq),
        [],
      )
      await store.commit([ack(a, 5)])
      assert.deepEqual(
        (await store.readLog(a.id, 3, 3, T0)).map((m) => m.seq),
        [4, 5, 6],
        'an acknowledged message is still in the log',
      )
      assert.deepEqual(await store.readLog(424242, 0, 10, T0), [])
    })

    test('readLog hides messages that expired by now (expiresAt <= now) without removing them', async (store) => {
      const a = await mkUser(store, 'a')
      await store.commit([
        send([copy(a.id, { expiresAt: T0 + 100 })]),
        send([copy(a.id)]),
        send([copy(a.id, { expiresAt: T0 + 200 })]),
      ])
      assert.deepEqual(await seqs(store, a.id, 0, T0 + 99), [1, 2, 3])
      assert.deepEqual(await seqs(store, a.id, 0, T0 + 100), [2, 3])
      assert.deepEqual(await seqs(store, a.id, 0, T0 + 200), [2])
      assert.equal((await store.queueStats(a.id)).count, 3, 'reading does not expire')
    })

    test('expire removes messages with expiresAt <= now and returns those no device acknowledged, at most limit per call', async (store) => {
      const a = await mkUser(store, 'a')
      const b = await mkUser(store, 'b')
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
        (await store.readLog(a.id, 0, 10, 0)).map((m) => m.msgId),
        [104, 105],
      )
      assert.deepEqual(await store.queueStats(b.id), { count: 0, bytes: 0 })
      assert.deepEqual(await store.queueStats(a.id), { count: 2, bytes: 10 })
      // Expired is handled: a late ack moves the cursor but is not first.
      assert.deepEqual(ackOf((await store.commit([ack(a, 1)]))[0]), { first: null, fresh: true })
      assert.deepEqual(await store.queueStats(a.id), { count: 2, bytes: 10 })
    })

    test('expire: an acknowledged message or a sent copy goes quietly (not returned, counters unchanged)', async (store) => {
      const a = await mkUser(store, 'a')
      await store.commit([
        send([copy(a.id, { expiresAt: T0 + 10 })]),
        send([copy(a.id, { expiresAt: T0 + 10 })]),
        send([sentCopy(a, 77, { expiresAt: T0 + 10 })]),
        send([copy(a.id)]),
      ])
      await store.commit([ack(a, 1)])
      assert.deepEqual(await store.queueStats(a.id), { count: 2, bytes: 10 })
      const gone = await store.expire(T0 + 10, 100)
      assert.deepEqual(
        gone.map((m) => m.seq),
        [2],
      )
      assert.deepEqual(await seqs(store, a.id, 0, 0), [4])
      assert.deepEqual(await store.queueStats(a.id), { count: 1, bytes: 5 })
      assert.deepEqual(await store.expire(T0 + 10, 100), [])
    })

    test('concurrent expire calls return each expired message once', async (store) => {
      const a = await mkUser(store, 'a')
      await store.commit(Array.from({ length: 20 }, () => send([copy(a.id, { expiresAt: T0 })])))
      const all = (await Promise.all(Array.from({ length: 4 }, () => store.expire(T0, 100)))).flat()
      assert.deepEqual(
        all.map((m) => m.seq).sort((x, y) => x - y),
        Array.from({ length: 20 }, (_, i) => i + 1),
      )
      assert.deepEqual(await store.queueStats(a.id), { count: 0, bytes: 0 })
    })

    // ------------------------------------------------------------------ history

    /** a's log: the kinds and directions history must tell apart. Returns a, b, c and the seqs by label. */
    async function historyFixture(store: Store) {
      const a = await mkUser(store, 'a')
      const b = await mkUser(store, 'b')
      const c = await mkUser(store, 'c')
      const fromB = (over: Partial<NewCopy> = {}) => copy(a.id, { from: b.id, fromName: 'b', peer: b.id, ...over })
      await store.commit([
        send([fromB({ body: Buffer.from('1 b→a') })]),
        send([sentCopy(a, b.id, { body: Buffer.from('2 a→b') })]),
        send([copy(a.id, { from: c.id, fromName: 'c', peer: c.id, body: Buffer.from('3 c→a') })]),
        send([fromB({ topic: 'news', body: Buffer.from('4 b→news') })]), // a topic message: not in b's conversation
        send([copy(a.id, { kind: 'receipt', from: 0, fromName: 'SERVER', peer: b.id, body: Buffer.from('{}') })]),
        send([fromB({ kind: 'file', fileId: 'f1', body: Buffer.from('6 file') })]),
        send([copy(a.id, { kind: 'notice', from: 0, fromName: 'SERVER', body: Buffer.from('7 notice') })]),
        send([sentCopy(a, 0, { topic: 'news', peer: undefined, body: Buffer.from('8 a→news') })]),
        send([copy(a.id, { from: c.id, fromName: 'c', topic: 'other', body: Buffer.from('9 c→other') })]),
      ])
      return { a, b, c }
    }

    const hseqs = (ms: StoredMessage[]) => ms.map((m) => m.seq)

    test('history: newest first, text and file only, both ways', async (store) => {
      const { a } = await historyFixture(store)
      assert.deepEqual(hseqs(await store.history(a.id, { before: 0, limit: 100 })), [9, 8, 6, 4, 3, 2, 1])
      assert.deepEqual(hseqs(await store.history(a.id, { before: 0, limit: 2 })), [9, 8], 'at most limit')
      assert.deepEqual(hseqs(await store.history(a.id, { before: 8, limit: 3 })), [6, 4, 3], 'before is exclusive')
      assert.deepEqual(hseqs(await store.history(a.id, { before: 1, limit: 3 })), [])
      assert.deepEqual(await store.history(424242, { before: 0, limit: 10 }), [])
      const all = await store.history(a.id, { before: 0, limit: 100 })
      assert.equal(all.find((m) => m.seq === 6)?.fileId, 'f1')
      assert.equal(all.find((m) => m.seq === 2)?.flags, SENT)
    })

    test('history by peer: direct messages with that user both ways, no topic messages, no receipts', async (store) => {
      const { a, b, c } = await historyFixture(store)
      assert.deepEqual(hseqs(await store.history(a.id, { peer: b.id, before: 0, limit: 100 })), [6, 2, 1])
      assert.deepEqual(hseqs(await store.history(a.id, { peer: b.id, before: 6, limit: 1 })), [2])
      assert.deepEqual(hseqs(await store.history(a.id, { peer: b.id, before: 2, limit: 10 })), [1])
      assert.deepEqual(hseqs(await store.history(a.id, { peer: c.id, before: 0, limit: 100 })), [3])
      assert.deepEqual(await store.history(a.id, { peer: 424242, before: 0, limit: 100 }), [])
    })

    test('history by topic: that topic both ways', async (store) => {
      const { a } = await historyFixture(store)
      assert.deepEqual(hseqs(await store.history(a.id, { topic: 'news', before: 0, limit: 100 })), [8, 4])
      assert.deepEqual(hseqs(await store.history(a.id, { topic: 'news', before: 8, limit: 100 })), [4])
      assert.deepEqual(hseqs(await store.history(a.id, { topic: 'other', before: 0, limit: 100 })), [9])
      assert.deepEqual(await store.history(a.id, { topic: 'none', before: 0, limit: 100 }), [])
    })

    test('history holds acknowledged messages, not those retention removed', async (store) => {
      const { a, b } = await historyFixture(store)
      await store.commit([ack(a, 1), ack(a, 3)])
      assert.deepEqual(hseqs(await store.history(a.id, { peer: b.id, before: 0, limit: 100 })), [6, 2, 1])
      await store.retain({ before: T0 + 1, keep: 0 }, 100)
      // Handled: 1 and 3 (acknowledged), 2 and 8 (sent copies).
      assert.deepEqual(hseqs(await store.history(a.id, { before: 0, limit: 100 })), [9, 6, 4])
    })

    // ------------------------------------------------------------------ retention

    test('retain removes handled messages older than before, never an unacknowledged one', async (store) => {
      const a = await mkUser(store, 'a')
      const b = await mkUser(store, 'b')
      await store.commit([
        ...Array.from({ length: 4 }, (_, i) => send([copy(a.id, { ts: T0 + i * 10 })])), // 1..4, ts T0..T0+30
        send([sentCopy(a, b.id, { ts: T0 + 40, device: undefined })]), // 5 (from no device: its ack below is fresh)
        send([copy(a.id, { ts: T0 + 50 })]), // 6
        send([copy(b.id, { ts: T0 })]),
      ])
      await store.commit([ack(a, 1), ack(a, 2), ack(a, 3), ack(a, 6), ack(b, 1)])
      const stats = await store.queueStats(a.id)
      // ts < before, strictly: 3 (ts T0+20) stays.
      assert.equal(await store.retain({ before: T0 + 20, keep: 1000 }, 100), 3) // a 1, 2 and b 1
      assert.deepEqual(await seqs(store, a.id), [3, 4, 5, 6])
      assert.deepEqual(await seqs(store, b.id), [])
      assert.equal(await store.retain({ before: T0 + 1000, keep: 1000 }, 100), 3) // 3, 5, 6
      assert.deepEqual(await seqs(store, a.id), [4], 'the unacknowledged one stays')
      assert.equal(await store.retain({ before: T0 + 1000, keep: 0 }, 100), 0, 'even with keep 0')
      assert.deepEqual(await store.queueStats(a.id), stats, 'retention changes no counter')
      assert.equal(await sendOne(store, copy(a.id)), 7, 'nor the next seq')
      assert.equal(firstOf((await store.commit([ack(a, 4)]))[0])?.seq, 4)
      assert.deepEqual(
        ackOf((await store.commit([ack(a, 5)]))[0]),
        { first: null, fresh: true },
        'a removed seq is acknowledged quietly',
      )
    })

    test('retain keeps the newest `keep` seqs of each log, acknowledged or not', async (store) => {
      const a = await mkUser(store, 'a')
      const b = await mkUser(store, 'b')
      await store.commit(Array.from({ length: 10 }, () => send([copy(a.id), copy(b.id)])))
      await store.commit([
        ...Array.from({ length: 8 }, (_, i) => ack(a, i + 1)),
        ...Array.from({ length: 10 }, (_, i) => ack(b, i + 1)),
      ])
      // a: 9 and 10 unacknowledged; keep 3 keeps seqs 8..10. b: all acknowledged, keeps 8..10.
      assert.equal(await store.retain({ before: 0, keep: 3 }, 100), 14)
      assert.deepEqual(await seqs(store, a.id), [8, 9, 10])
      assert.deepEqual(await seqs(store, b.id), [8, 9, 10])
      assert.equal(await store.retain({ before: 0, keep: 3 }, 100), 0)
      assert.equal(
        await store.retain({ before: T0 + 1, keep: 3 }, 100),
        4,
        'before still applies to the kept ones (a 8, b 8..10)',
      )
      assert.deepEqual(await seqs(store, a.id), [9, 10])
      assert.deepEqual(await seqs(store, b.id), [])
    })

    test('retain honours its limit: repeated calls finish the work', async (store) => {
      const a = await mkUser(store, 'a')
      const b = await mkUser(store, 'b')
      await store.commit(Array.from({ length: 30 }, () => send([copy(a.id), copy(b.id)])))
      await store.commit(Array.from({ length: 30 }, (_, i) => [ack(a, i + 1), ack(b, i + 1)]).flat())
      let total = 0
      for (let i = 0; i < 100; i++) {
        const n = await store.retain({ before: T0 + 1, keep: 0 }, 7)
        assert.ok(n <= 14, `${n} is about the limit (7)`)
        if (n === 0) break
        total += n
      }
      assert.equal(total, 60)
      assert.deepEqual(await store.readLog(a.id, 0, 100, T0), [])
      assert.deepEqual(await store.readLog(b.id, 0, 100, T0), [])
    })

    // ------------------------------------------------------------------ restarts

    test('a restart keeps cursors, handled sets, read marks and counters', async (store, swap) => {
      if (opts.reopen === undefined) return
      const a = await mkUser(store, 'a')
      const b = await mkUser(store, 'b')
      const d2 = (await store.createDevice(a.id, tok(222), 'web', T0))!
      await store.commit(Array.from({ length: 5 }, () => send([copy(a.id)])))
      await store.commit([send([sentCopy(a, b.id)])])
      await store.commit([ack(a, 1), ack(a, 2), ack(a, 4), ack(a, 2, d2.id), read(a, 3)])
      const s = await opts.reopen(store)
      swap(s)
      assert.deepEqual(
        await cursor(s, a.device),
        {
          floor: 2,
          above: [
            [4, 4],
            [6, 6],
          ],
        },
        'the sent copy (6) too',
      )
      assert.deepEqual(await cursor(s, d2.id), { floor: 0, above: [[2, 2]] })
      assert.deepEqual(await s.queueStats(a.id), { count: 2, bytes: 10 })
      assert.deepEqual(ackOf((await s.commit([ack(a, 1, d2.id)]))[0]), { first: null, fresh: true }, 'handled before')
      assert.equal(firstOf((await s.commit([ack(a, 3, d2.id)]))[0])?.seq, 3)
      assert.equal(readOf((await s.commit([read(a, 3)]))[0]), null, 'read before')
      assert.equal(readOf((await s.commit([read(a, 4)]))[0])?.seq, 4)
      assert.deepEqual(await s.queueStats(a.id), { count: 1, bytes: 5 })
      assert.equal(await s.retain({ before: T0 + 1, keep: 0 }, 100), 5, 'the handled set survived: 1, 2, 3, 4 and the sent copy')
      assert.deepEqual(await seqs(s, a.id), [5])
      assert.equal(await sendOne(s, copy(a.id)), 7)
      assert.deepEqual((await s.deviceByToken(tok(222)))?.id, d2.id)
      assert.deepEqual((await s.userById(a.id))?.tokenless, false)
    })

    // ------------------------------------------------------------------ topics

    test('subscribe/unsubscribe report changes; subscribers, subscriptions and topics are sorted', async (store) => {
      const a = await mkUser(store, 'a')
      const b = await mkUser(store, 'b')
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
      const a = await mkUser(store, 'a')
      const b = await mkUser(store, 'b')
      const c = await mkUser(store, 'c')
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
