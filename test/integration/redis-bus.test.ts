/**
 * RedisBus against the real Redis (REDIS_URL, default 127.0.0.1:6379). Every test uses its own key prefix and
 * deletes its keys afterwards. Without Redis the file skips with the reason, except under CI=true.
 */
import { describe, it, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { RedisBus, type RedisBusOptions } from '../../src/bus/redis/redis-bus.js'
import type { BusMessage } from '../../src/bus/bus.js'
import type { Message, PresenceInfo } from '../../src/core/types.js'
import { until } from '../helpers/wait.js'

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

async function reachable(): Promise<string | undefined> {
  const r = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000 })
  r.on('error', () => {})
  try {
    await r.connect()
    await r.ping()
    return undefined
  } catch (err) {
    return `Redis at ${REDIS_URL} is unreachable (${(err as Error).message})`
  } finally {
    r.disconnect()
  }
}

const unreachable = await reachable()
if (unreachable !== undefined && process.env.CI === 'true') throw new Error(`${unreachable}; CI=true requires it`)

let n = 0
const runId = `sbtest:${process.pid}:${Date.now().toString(36)}`

/** A fresh prefix whose keys are deleted after the test. */
function prefixFor(t: TestContext): string {
  const prefix = `${runId}:${++n}`
  t.after(async () => {
    const r = new Redis(REDIS_URL)
    const keys = await r.keys(`${prefix}:*`)
    if (keys.length > 0) await r.del(...keys)
    await r.quit()
  })
  return prefix
}

interface Node {
  bus: RedisBus
  got: BusMessage[]
}

async function node(t: TestContext, prefix: string, nodeId: string, more: Partial<RedisBusOptions> = {}): Promise<Node> {
  const bus = new RedisBus({ url: REDIS_URL, prefix, nodeId, heartbeatMs: 100, nodeTtlMs: 400, ...more })
  const got: BusMessage[] = []
  await bus.start((m) => got.push(m))
  t.after(() => bus.close())
  return { bus, got }
}

/** A node in a child process (test/helpers/redis-bus-node.ts), with `user` online on it; killed when the test ends. */
async function childNode(t: TestContext, prefix: string, nodeId: string, user: number): Promise<ChildProcess> {
  const script = fileURLToPath(new URL('../helpers/redis-bus-node.ts', import.meta.url))
  const child = spawn(process.execPath, ['--import', 'tsx', script, REDIS_URL, prefix, nodeId, String(user), '100', '400'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  t.after(() => {
    child.kill('SIGKILL')
  })
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string]
  assert.equal(line, 'ready')
  return child
}

function presence(id: number, name = `u${id}`, device = 1): PresenceInfo {
  return { id, name, protocol: 'native', since: 1, lastSeen: 2, device }
}

const offlineEvents = (got: BusMessage[], user: number): number =>
  got.filter((m) => m.type === 'broadcast' && m.ev.type === 'presence' && !m.ev.online && m.ev.user.id === user).length

if (unreachable !== undefined) {
  describe('RedisBus', () => {
    it('needs Redis', { skip: unreachable }, () => {})
  })
} else {
  describe('RedisBus', () => {
    it('publish reaches every other node, not the sender; Buffers arrive intact', async (t) => {
      const prefix = prefixFor(t)
      const [a, b, c] = [await node(t, prefix, 'a'), await node(t, prefix, 'b'), await node(t, prefix, 'c')]
      const body = Buffer.from([0, 255, 1, 2])
      const m: BusMessage = {
        type: 'event',
        to: 9,
        ev: { type: 'message', msg: { seq: 1, msgId: 2, from: 3, fromName: 'x', to: 9, kind: 'text', ts: 4, body, flags: 0 } },
      }
      a.bus.publish(m)
      a.bus.publish({ type: 'wake', user: 9 })
      await until('b and c to receive both', () => b.got.length === 2 && c.got.length === 2)
      assert.deepEqual(b.got[0], m)
      assert.deepEqual(c.got[1], { type: 'wake', user: 9 })
      // Redis delivers a channel's messages in the order it ran the PUBLISHes, and b published after a's two were
      // delivered: had a heard itself, its own messages would be in a.got before b's.
      b.bus.publish({ type: 'wake', user: 10 })
      await until('a to receive b', () => a.got.length > 0)
      assert.deepEqual(a.got, [{ type: 'wake', user: 10 }], 'a node does not hear itself')
    })

    it("a wake goes to the holder's node only, carrying the turn's messages in one publish", async (t) => {
      const prefix = prefixFor(t)
      const [a, b, c] = [await node(t, prefix, 'a'), await node(t, prefix, 'b'), await node(t, prefix, 'c')]
      await b.bus.setOnline(presence(7, 'u7', 1))
      await b.bus.setOnline(presence(7, 'u7', 2)) // two devices on one node: one wake
      // Both devices' announcements in a's copy before a commits (one arriving after a commit is answered with a
      // catch-up wake, the next test): b's own publish on the same channel comes after them.
      b.bus.publish({ type: 'revoke', user: 0, device: 0 })
      const heard = (n: Node): boolean => n.got.some((x) => x.type === 'revoke')
      await until('a and c to hear both announcements', () => heard(a) && heard(c))
      c.got.length = 0
      assert.deepEqual(a.bus.knownHolders(7), ['b'])
      const m = (seq: number, body: Buffer): Message => ({
        seq,
        msgId: seq,
        from: 3,
        fromName: 'x',
        to: 7,
        kind: 'text',
        ts: 4,
        body,
        flags: 0,
      })
      const sentBefore = a.bus.counters.published
      assert.equal(a.bus.wake(m(1, Buffer.from([0, 255]))), true, 'online on another node')
      assert.equal(a.bus.wake(m(2, Buffer.from('two'))), true)
      assert.equal(a.bus.wake({ ...m(3, Buffer.alloc(0)), to: 8 }), false, 'nobody holds 8: no wake, not online')
      await until('b to be woken', () => b.got.length > 0)
      assert.deepEqual(b.got, [{ type: 'wake', user: 7, msgs: [m(1, Buffer.from([0, 255])), m(2, Buffer.from('two'))] }])
      assert.equal(a.bus.counters.published - sentBefore, 1, "one publish for the turn's wakes")
      // A body over the carried limit is a plain wake: b reads it from the store.
      assert.equal(a.bus.wake(m(4, Buffer.alloc(100_000))), true)
      await until('the plain wake', () => b.got.length > 1)
      assert.deepEqual(b.got[1], { type: 'wake', user: 7 })
      // An event for 7 goes to b alone too.
      a.bus.publish({ type: 'event', to: 7, ev: { type: 'notice', code: 'x', text: 'y' } })
      await until('the event', () => b.got.length > 2)
      // c has heard nothing all along (a wake or event for it would have come before b's last).
      b.bus.publish({ type: 'wake', user: 1 })
      await until('c to hear b', () => c.got.length > 0)
      assert.deepEqual(c.got, [{ type: 'wake', user: 1 }], 'c heard no wake or event meant for b')
      // The device leaving: a's copy follows, and a commit for 7 wakes nobody.
      await b.bus.setOffline(7, 1)
      await b.bus.setOffline(7, 2)
      await until('a to see 7 gone', () => a.bus.knownHolders(7).length === 0)
      assert.equal(a.bus.wake(m(5, Buffer.from('5'))), false)
    })

    it('a device that comes online elsewhere after a commit found no holder is woken (it may have read its log before)', async (t) => {
      const prefix = prefixFor(t)
      const a = await node(t, prefix, 'a')
      const b = await node(t, prefix, 'b')
      const m: Message = {
        seq: 1,
        msgId: 1,
        from: 3,
        fromName: 'x',
        to: 9,
        kind: 'text',
        ts: 4,
        body: Buffer.from('x'),
        flags: 0,
      }
      // The race, drawn out: b's login is in the registry, but its announcement has not reached a's copy when a
      // commits (here: a has not been told at all; a wake() before the announcement is what a race looks like).
      assert.equal(a.bus.wake(m), false)
      await b.bus.setOnline(presence(9))
      await until('b to be woken for 9 when a hears the login', () => b.got.some((x) => x.type === 'wake' && x.user === 9))
      assert.deepEqual(b.got, [{ type: 'wake', user: 9 }], 'a plain wake: b reads the log from its cursor')
      assert.equal(a.bus.counters.catchUpWakes, 1)
      // A user a never committed for is not woken on login.
      await b.bus.setOnline(presence(10))
      await until("a's copy to have 10", () => a.bus.knownHolders(10).length === 1)
      a.bus.publish({ type: 'event', to: 9, ev: { type: 'notice', code: 'x', text: 'y' } })
      await until('the event after', () => b.got.length === 2)
      assert.equal(b.got[1]!.type, 'event', 'no wake for 10 came before it')
    })

    it("a node that starts later loads the registry; a reaped node's entries leave every copy", async (t) => {
      const prefix = prefixFor(t)
      const dead = await node(t, prefix, 'dead')
      await dead.bus.setOnline(presence(5))
      const a = await node(t, prefix, 'a')
      assert.deepEqual(a.bus.knownHolders(5), ['dead'], 'loaded at start')
      dead.bus.kill()
      await until("a to drop the dead node's entries", () => a.bus.knownHolders(5).length === 0, 3000)
    })

    it('different prefixes are different clusters', async (t) => {
      const a = await node(t, prefixFor(t), 'a')
      const prefixB = prefixFor(t)
      const b = await node(t, prefixB, 'b')
      const b2 = await node(t, prefixB, 'b2')
      a.bus.publish({ type: 'wake', user: 1 })
      // One connection runs its commands in order: once setOnline has resolved, Redis has run a's PUBLISH.
      await a.bus.setOnline(presence(1))
      b2.bus.publish({ type: 'wake', user: 2 })
      await until("b to receive b2's message", () => b.got.length > 0)
      assert.deepEqual(b.got, [{ type: 'wake', user: 2 }], "a's message, published earlier, did not reach b")
      assert.equal(await b.bus.isOnline(1), false)
    })

    it('presence is cluster-wide: setOnline, online(), isOnline, setOffline', async (t) => {
      const prefix = prefixFor(t)
      const a = await node(t, prefix, 'a')
      const b = await node(t, prefix, 'b')
      assert.equal(await b.bus.isOnline(1), false)
      await a.bus.setOnline(presence(1, 'alice'))
      assert.equal(await b.bus.isOnline(1), true, 'visible on another node as soon as setOnline resolved')
      assert.equal(await a.bus.isOnline(1), true)
      assert.equal(await b.bus.nodeOf(1, 1), 'a')
      await b.bus.setOnline(presence(2, 'bob'))
      const list = (await a.bus.online()).sort((x, y) => x.id - y.id)
      assert.deepEqual(list, [
        { ...presence(1, 'alice'), node: 'a' },
        { ...presence(2, 'bob'), node: 'b' },
      ])
      await a.bus.setOffline(1, 1)
      assert.equal(await b.bus.isOnline(1), false)
      assert.deepEqual(
        (await b.bus.online()).map((p) => p.id),
        [2],
      )
    })

    it('a user is online while any of its devices is, on any node; each device leaves on its own', async (t) => {
      const prefix = prefixFor(t)
      const a = await node(t, prefix, 'a')
      const b = await node(t, prefix, 'b')
      const r = new Redis(REDIS_URL)
      t.after(() => r.quit())
      await a.bus.setOnline(presence(1, 'alice', 1))
      await b.bus.setOnline(presence(1, 'alice', 2))
      await b.bus.setOnline(presence(1, 'alice', 3))
      // A rename rewrites a device's entry: still three devices, not four.
      await b.bus.setOnline(presence(1, 'alice2', 3))
      assert.deepEqual(await a.bus.nodesOf(1), ['a', 'b'])
      assert.equal(await b.bus.nodeOf(1, 1), 'a')
      assert.equal(await a.bus.nodeOf(1, 2), 'b')
      assert.equal(await a.bus.nodeOf(1, 4), undefined)
      assert.deepEqual((await a.bus.online()).map((p) => [p.device, p.node, p.name]).sort(), [
        [1, 'a', 'alice'],
        [2, 'b', 'alice'],
        [3, 'b', 'alice2'],
      ])
      assert.equal(await r.hget(`${prefix}:online`, '1'), '3', 'the count is the number of devices')
      await a.bus.setOffline(1, 1)
      assert.equal(await b.bus.isOnline(1), true, 'its devices on b keep it online')
      assert.equal(await a.bus.isOnline(1), true, 'a has no session of it left, and asks Redis')
      assert.deepEqual(await a.bus.nodesOf(1), ['b'])
      await a.bus.setOffline(1, 2) // not a's device: nothing happens
      await b.bus.setOffline(1, 2)
      await b.bus.setOffline(1, 2) // twice: counted once
      assert.equal(await a.bus.isOnline(1), true)
      await b.bus.setOffline(1, 3)
      assert.equal(await a.bus.isOnline(1), false)
      assert.equal(await b.bus.isOnline(1), false)
      assert.deepEqual(await a.bus.nodesOf(1), [])
      assert.equal(await r.hexists(`${prefix}:online`, '1'), 0, 'no count left behind at zero')
      assert.deepEqual(await r.hgetall(`${prefix}:presence`), {})
    })

    it('a device that logged in again elsewhere is not taken offline by its old node, nor its other devices', async (t) => {
      const prefix = prefixFor(t)
      const a = await node(t, prefix, 'a')
      const b = await node(t, prefix, 'b')
      await a.bus.setOnline(presence(6, 'u6', 1))
      await a.bus.setOnline(presence(6, 'u6', 2))
      await b.bus.setOnline({ ...presence(6, 'u6', 1), since: 5 }) // device 1 logged in again on b
      assert.equal(await a.bus.nodeOf(6, 1), 'b')
      await a.bus.setOffline(6, 1) // a ends device 1's old session after the kick
      assert.equal(await a.bus.nodeOf(6, 1), 'b')
      await a.bus.setOffline(6, 2)
      assert.equal(await a.bus.isOnline(6), true, 'device 1, on b, keeps the user online')
      await b.bus.setOffline(6, 1)
      assert.equal(await a.bus.isOnline(6), false)
    })

    it('setOffline by the old node does not remove a user who moved to another node', async (t) => {
      const prefix = prefixFor(t)
      const a = await node(t, prefix, 'a')
      const b = await node(t, prefix, 'b')
      await a.bus.setOnline(presence(5))
      await b.bus.setOnline(presence(5)) // logged in again on b; a's session is being kicked
      await a.bus.setOffline(5, 1) // a ends its session after the kick arrives
      assert.equal(await a.bus.isOnline(5), true)
      assert.equal(await a.bus.nodeOf(5, 1), 'b')
    })

    it('a killed node is reaped once: its users go offline and every survivor hears it exactly once', async (t) => {
      const prefix = prefixFor(t)
      const a = await node(t, prefix, 'a')
      const b = await node(t, prefix, 'b')
      const dead = await node(t, prefix, 'dead')
      await dead.bus.setOnline(presence(7, 'u7', 1))
      await dead.bus.setOnline(presence(7, 'u7', 2))
      await dead.bus.setOnline(presence(8))
      await dead.bus.setOnline(presence(9, 'u9', 1))
      await b.bus.setOnline(presence(9, 'u9', 2)) // 9 has another device, on a survivor
      await a.bus.setOnline(presence(1))
      assert.equal(await a.bus.isOnline(7), true)
      const t0 = Date.now()
      dead.bus.kill()
      await until('the dead node to be reaped', async () => !(await a.bus.isOnline(7)) && !(await a.bus.isOnline(8)), 3000)
      t.diagnostic(`dead node reaped ${Date.now() - t0} ms after kill (ttl 400 ms, heartbeat 100 ms)`)
      await until('both survivors to hear of both users', () =>
        [7, 8].every((u) => offlineEvents(a.got, u) >= 1 && offlineEvents(b.got, u) >= 1),
      )
      // Two more heartbeats of each survivor (each beat writes the time into the node's key, and a beat starts
      // only after the previous one, reaping included, has finished): nobody reaps it again.
      const r = new Redis(REDIS_URL)
      t.after(() => r.quit())
      const beats = { a: new Set<string | null>(), b: new Set<string | null>() }
      await until('two more heartbeats of a and b', async () => {
        for (const id of ['a', 'b'] as const) beats[id].add(await r.get(`${prefix}:node:${id}`))
        return beats.a.size >= 3 && beats.b.size >= 3
      })
      for (const u of [7, 8]) {
        assert.equal(offlineEvents(a.got, u), 1, 'once per user, however many of its devices were there')
        assert.equal(offlineEvents(b.got, u), 1)
      }
      assert.equal(a.bus.counters.reaped + b.bus.counters.reaped, 4, 'one survivor did the work')
      assert.equal(await b.bus.isOnline(1), true, "the survivors' own users stay online")
      assert.equal(await a.bus.isOnline(9), true, 'a user with a device on a survivor stays online…')
      assert.equal(offlineEvents(a.got, 9) + offlineEvents(b.got, 9), 0, '…and nobody is told it went offline')
      assert.deepEqual(await a.bus.nodesOf(9), ['b'])
      assert.deepEqual(await r.hgetall(`${prefix}:online`), { '1': '1', '9': '1' })
      assert.deepEqual((await r.smembers(`${prefix}:nodes`)).sort(), ['a', 'b'])
    })

    it('presence left by a node that never came back (ghost) is reaped by a node that starts later', async (t) => {
      const prefix = prefixFor(t)
      const r = new Redis(REDIS_URL)
      t.after(() => r.quit())
      await r.sadd(`${prefix}:nodes`, 'ghost')
      await r.hset(`${prefix}:presence`, '11:1', JSON.stringify({ ...presence(11), node: 'ghost' }))
      await r.hset(`${prefix}:online`, '11', 1)
      const a = await node(t, prefix, 'a')
      await until('the ghost to be reaped', async () => !(await a.bus.isOnline(11)), 2000)
      assert.equal(offlineEvents(a.got, 11), 1, 'the reaper tells its own broker too')
    })

    it('a node paused past its TTL re-registers its sessions when it beats again', async (t) => {
      const prefix = prefixFor(t)
      const a = await node(t, prefix, 'a')
      // b runs in a process of its own so that it can really be paused (SIGSTOP): no heartbeat of b can put its key
      // back before a looks, which is what made deleting the key from here flaky.
      const b = await childNode(t, prefix, 'b', 3)
      assert.equal(await a.bus.isOnline(3), true)
      b.kill('SIGSTOP')
      await until('a to reap b once its key expired', () => offlineEvents(a.got, 3) === 1, 5000)
      assert.equal(await a.bus.isOnline(3), false)
      b.kill('SIGCONT')
      await until('b to re-register', () => a.bus.isOnline(3), 5000)
      assert.equal(await a.bus.nodeOf(3, 0), 'b', 'an entry without a device is device 0')
      const r = new Redis(REDIS_URL)
      t.after(() => r.quit())
      assert.deepEqual((await r.smembers(`${prefix}:nodes`)).sort(), ['a', 'b'])
    })

    it('after losing its connections and the registry (a Redis restart), a node re-registers and hears again', async (t) => {
      const prefix = prefixFor(t)
      // Node ids unique to this run, so only this test's connections are found by name and killed.
      const [ida, idb] = [`a-${process.pid}-${n}`, `b-${process.pid}-${n}`]
      const a = await node(t, prefix, ida)
      const b = await node(t, prefix, idb)
      await a.bus.setOnline(presence(1, 'u1', 1))
      await a.bus.setOnline(presence(1, 'u1', 2))
      // b commits for user 1 while Redis is away (its wake cannot go anywhere): once both are back, a is woken
      // for 1, whether b hears a's re-registration or finds it in the registry it reloads.
      const committed = { seq: 1, msgId: 1, from: 2, fromName: 'x', to: 1, kind: 'text', ts: 4, body: Buffer.from('x'), flags: 0 }
      const r = new Redis(REDIS_URL)
      t.after(() => r.quit())
      // A restarted Redis has lost our keys and dropped our connections (never the machine's other clients).
      await r.del(`${prefix}:presence`, `${prefix}:online`, `${prefix}:nodes`, `${prefix}:node:${ida}`, `${prefix}:node:${idb}`)
      const ids = ((await r.client('LIST')) as string)
        .split('\n')
        .filter((l) => [ida, idb].some((id) => l.includes(` name=switchboard:${id}:`)))
        .map((l) => /^id=(\d+)/.exec(l)?.[1])
        .filter((x): x is string => x !== undefined)
      assert.equal(ids.length, 4, 'two connections per node')
      for (const id of ids) await r.client('KILL', 'ID', id)
      b.bus.wake(committed as Message)
      await until('a to be online again', () => b.bus.isOnline(1), 5000)
      await until('b to wake a for the user it committed for', () => b.bus.counters.catchUpWakes >= 1, 5000)
      await until('a to wake its local session', () => a.got.some((m) => m.type === 'wake' && m.user === 1), 5000)
      // Pub/sub is fire-and-forget: a message published before a's subscriber has subscribed again is gone,
      // so keep publishing until one gets through.
      await until(
        'pub/sub to flow again',
        () => {
          if (a.got.some((m) => m.type === 'wake' && m.user === 42)) return true
          b.bus.publish({ type: 'wake', user: 42 })
          return false
        },
        10_000,
      )
      assert.ok(a.bus.counters.reconnects >= 1)
      assert.equal(await b.bus.nodeOf(1, 1), ida)
      assert.equal(await b.bus.nodeOf(1, 2), ida)
      assert.equal(await r.hget(`${prefix}:online`, '1'), '2', 'both devices re-registered, counted once each')
    })

    it('isOnline cost, measured (a Redis round trip for remote users, none for local ones)', async (t) => {
      const prefix = prefixFor(t)
      // What is measured here is the cost of a lookup, not liveness: a TTL far above any stall of a loaded
      // machine, so that no node is reaped while 2,000 round trips run (with 400 ms, a busy CI host reaped b).
      const slow = { heartbeatMs: 1000, nodeTtlMs: 60_000 }
      const a = await node(t, prefix, 'a', slow)
      const b = await node(t, prefix, 'b', slow)
      await b.bus.setOnline(presence(1))
      await a.bus.setOnline(presence(2))
      const N = 2000
      let t0 = performance.now()
      for (let i = 0; i < N; i++) assert.equal(await a.bus.isOnline(1), true)
      const remote = ((performance.now() - t0) * 1000) / N
      t0 = performance.now()
      await Promise.all(Array.from({ length: N }, () => a.bus.isOnline(1)))
      const pipelined = ((performance.now() - t0) * 1000) / N
      t0 = performance.now()
      for (let i = 0; i < N; i++) assert.equal(await a.bus.isOnline(2), true)
      const local = ((performance.now() - t0) * 1000) / N
      t.diagnostic(
        `isOnline: remote ${remote.toFixed(1)} µs sequential, ${pipelined.toFixed(1)} µs each when ${N} are concurrent; local ${local.toFixed(2)} µs`,
      )
      assert.ok(remote > 0 && local >= 0)
    })

    it('close() takes this node and its sessions out of the registry', async (t) => {
      const prefix = prefixFor(t)
      const a = await node(t, prefix, 'a')
      const b = await node(t, prefix, 'b')
      await a.bus.setOnline(presence(1, 'u1', 1))
      await a.bus.setOnline(presence(1, 'u1', 2))
      await a.bus.setOnline(presence(2, 'u2', 1))
      await b.bus.setOnline(presence(2, 'u2', 2))
      await a.bus.close()
      assert.equal(await b.bus.isOnline(1), false)
      assert.equal(await b.bus.isOnline(2), true, 'its device on b')
      const r = new Redis(REDIS_URL)
      t.after(() => r.quit())
      assert.deepEqual(await r.smembers(`${prefix}:nodes`), ['b'])
      assert.deepEqual(await r.hgetall(`${prefix}:online`), { '2': '1' })
    })
  })
}
