/**
 * Switchboard in cluster mode: N `switchboard serve` processes started by the harness on the shared PostgreSQL
 * (--store) and Redis (--bus), with a cluster name of their own (schema + key prefix) that stop() drops again.
 * Clients are the single-node target's native clients, each pointed at one node:
 *
 *   direct     pair p: receiver r{p} on node p mod N, sender s{p} on node (p+1) mod N — with N > 1 every message
 *              crosses nodes (PostgreSQL commit on the sender's node, Redis wake, read and push on the receiver's).
 *   broadcast  receiver b{i} on node i mod N, the sender on node 0: one Redis publish per message, each node
 *              fans it out to its own sessions.
 *
 * Options (--opt): cluster.nodes=N (default 3; the targets cluster1/2/3 fix it), cluster.store=postgres://…,
 * cluster.bus=redis://… (defaults: the machine's services, or PG_URL / REDIS_URL).
 *
 * serverPid() is node 0's, so the harness's "server CPU" is one node's; stop() prints every node's CPU time.
 */
import type { ChildProcess } from 'node:child_process'
import pg from 'pg'
import { Redis } from 'ioredis'
import { switchboardTarget, unlimitedArgs } from './switchboard.js'
import type { BenchTarget, TargetFactory, TargetParams } from './target.js'
import { waitForExit } from '../lib/spawn.js'
import { spawnServer } from '../../scripts/spawn-server.js'
import { cpuMs } from '../lib/proc.js'

const DEFAULT_PG = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const DEFAULT_REDIS = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

let started = 0

/** Which node a bench client id connects to (see the header). */
export function nodeFor(id: string, nodes: number): number {
  const m = /^([a-z]+)(\d+)$/.exec(id)
  if (m === null) return 0
  const n = Number(m[2])
  return (m[1] === 's' ? n + 1 : n) % nodes
}

export function switchboardClusterTarget(fixedNodes?: number): TargetFactory {
  return (given): BenchTarget => {
    // The options object is shared by every target of a run: keep what start() learns (ports) in a copy.
    const params: TargetParams = { ...given, options: { ...given.options } }
    const nodes = fixedNodes ?? Number(params.options['cluster.nodes'] ?? 3)
    if (!Number.isInteger(nodes) || nodes < 1 || nodes > 16) throw new Error(`cluster.nodes must be 1..16, got ${nodes}`)
    const store = params.options['cluster.store'] ?? DEFAULT_PG
    const bus = params.options['cluster.bus'] ?? DEFAULT_REDIS
    const children: ChildProcess[] = []
    let name = ''
    const ports = (): number[] => (params.options['cluster.ports'] ?? '').split(',').filter(Boolean).map(Number)

    const startNode = async (i: number): Promise<number> => {
      const started = await spawnServer(
        [
          ...['--store', store, '--bus', bus, '--cluster-name', name, '--node-id', `n${i}`, '--port', '0', '--http-port', '-1'],
          ...['--log-level', 'warn', '--log-format', 'json', '--max-queue-length', '1000000', '--rate', '1000000'],
          ...unlimitedArgs(),
        ],
        { label: `cluster node n${i}`, timeoutMs: 30_000, onStderr: (d) => process.stderr.write(d) },
      )
      children.push(started.child)
      return started.port
    }

    const cleanup = async (): Promise<void> => {
      if (name === '') return
      const c = new pg.Client({ connectionString: store })
      try {
        await c.connect()
        await c.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`)
      } finally {
        await c.end().catch(() => {})
      }
      const r = new Redis(bus, { maxRetriesPerRequest: 1, retryStrategy: () => null })
      r.on('error', () => {})
      try {
        let cursor = '0'
        for (let i = 0; i < 10_000; i++) {
          const [next, keys] = await r.scan(cursor, 'MATCH', `${name}:*`, 'COUNT', 1000)
          if (keys.length > 0) await r.del(...keys)
          cursor = next
          if (cursor === '0') break
        }
      } finally {
        r.disconnect()
      }
    }

    return {
      name: fixedNodes === undefined ? 'switchboard-cluster' : `cluster${fixedNodes}`,
      semantics: `${nodes} node(s) on PostgreSQL + Redis; direct: ACCEPTED once committed in PostgreSQL, receiver on ${nodes > 1 ? 'another' : 'the same'} node ACKs each; broadcast: room over Redis pub/sub`,
      params: () => params,
      serverPid: () => children[0]?.pid,
      async start() {
        // A schema name: lowercase identifier, unique per run and start.
        name = `sb_bench_${params.runId.toLowerCase().replace(/[^a-z0-9]/g, '')}_${process.pid}_${++started}`
        try {
          const p = await Promise.all(Array.from({ length: nodes }, (_, i) => startNode(i)))
          params.options['cluster.ports'] = p.join(',')
        } catch (err) {
          await this.stop?.()
          throw err
        }
      },
      async stop() {
        const cpu = children.map((c) => (c.pid === undefined ? undefined : cpuMs(c.pid)))
        if (cpu.some((x) => x !== undefined))
          console.error(
            `  cluster nodes CPU time: ${cpu.map((ms, i) => `n${i} ${ms === undefined ? '?' : (ms / 1000).toFixed(1)} s`).join(', ')}`,
          )
        await Promise.all(
          children.splice(0).map(async (c) => {
            c.kill('SIGTERM')
            if (!(await waitForExit(c, 8000))) {
              c.kill('SIGKILL')
              await waitForExit(c, 2000)
            }
          }),
        )
        await cleanup().catch((e: unknown) => console.error(`  cluster cleanup of ${name}: ${String(e)}`))
        name = ''
      },
      connect(id, opts) {
        const port = ports()[nodeFor(id, nodes)]
        if (port === undefined) return Promise.reject(new Error('switchboard-cluster: not started (no ports)'))
        return switchboardTarget({ ...params, port }).connect(id, opts)
      },
    }
  }
}
