/**
 * Issue 13 finding 4: legacy gateway connections that never send a name.
 *
 * `--mode timeout`: one silent connection to each of the native, 001, 002 and 004 ports of a server started with
 * `--login-timeout` (5 s here instead of the default 30 s, so a run takes seconds); prints when the server closed
 * each, watching for `--watch` ms (four timeouts), -1 for one still open then.
 *
 * `--mode flood`: a server under `prlimit --nofile=--nofile` (256) takes `--flood` silent 004 connections, opened
 * one after another; then a new native client connects and REGISTERs (10 s deadline) and /healthz is asked (3 s),
 * each from the flood's address (127.0.0.1) and from another (127.0.0.2).
 * Prints how many of the flood the server closed, its open descriptors, whether it still runs, and the native
 * client's and /healthz's answers. `--caps raised` lifts the fixed server's per-address caps (as for a flood from
 * many addresses), so that what is measured is the descriptor reserve alone; the old server has no such caps.
 *
 *   node --import tsx bench/probes/hostile/legacy-nameless.ts --mode timeout --runs 3
 *   node --import tsx bench/probes/hostile/legacy-nameless.ts --mode flood --flood 300 --runs 3
 *   node --import tsx bench/probes/hostile/legacy-nameless.ts --mode flood --flood 300 --caps raised
 */
import { existsSync } from 'node:fs'
import { parseArgs } from 'node:util'
import {
  nativeRegisterMs,
  openFds,
  opt,
  rawConnect,
  repeat,
  round,
  sleep,
  startServer,
  timedGet,
  type Figures,
  type Raw,
} from './common.js'

const { values } = parseArgs({
  options: {
    mode: { type: 'string', default: 'timeout' },
    'login-timeout': { type: 'string', default: '5000' },
    watch: { type: 'string', default: '' },
    flood: { type: 'string', default: '300' },
    nofile: { type: 'string', default: '256' },
    caps: { type: 'string', default: 'default' },
    runs: { type: 'string', default: '1' },
  },
})
const LOGIN_TIMEOUT = Number(values['login-timeout'])
const WATCH = values.watch === '' ? 4 * LOGIN_TIMEOUT : Number(values.watch)

async function timeout(): Promise<Figures> {
  const s = await startServer([
    '--http-port',
    '-1',
    '--login-timeout',
    String(LOGIN_TIMEOUT),
    '--p001-port',
    '0',
    '--p002-port',
    '0',
    '--p004-port',
    '0',
  ])
  try {
    const names = ['native', 'p001', 'p002', 'p004'] as const
    const conns = await Promise.all(names.map((n) => rawConnect(s.ports()[n]!)))
    const end = Date.now() + WATCH
    while (!conns.every((c) => c.closed()) && Date.now() < end) await sleep(50)
    const f: Figures = {}
    names.forEach((n, i) => (f[`${n}ClosedAfterMs`] = round(conns[i]!.closedAfterMs() ?? -1, 0)))
    for (const c of conns) c.socket.destroy()
    return f
  } finally {
    await s.stop()
  }
}

async function flood(): Promise<Figures> {
  const raised = values.caps === 'raised'
  const s = await startServer(
    [
      '--http-port',
      '0',
      '--p004-port',
      '0',
      ...(raised
        ? [...opt('--max-connections-per-address', '100000'), ...opt('--max-unauthenticated-per-address', '100000')]
        : []),
    ],
    ['prlimit', `--nofile=${values.nofile}`, '--'],
  )
  try {
    const { p004, http } = s.ports() as { p004: number; http: number }
    const fdsBefore = openFds(s.pid)
    const conns: Raw[] = []
    let connectFailed = 0
    const t0 = performance.now()
    for (let i = 0; i < Number(values.flood); i++) {
      try {
        conns.push(await rawConnect(p004, 2000))
      } catch {
        connectFailed++
      }
    }
    const floodMs = performance.now() - t0
    await sleep(1000)
    const alive = existsSync(`/proc/${s.pid}`)
    const fdsAfter = alive ? openFds(s.pid) : -1
    // A newcomer on the native port and the health check, from the flood's address and from another one.
    const registerMs = await nativeRegisterMs(s.port, `native${process.pid}`)
    const registerOtherMs = await nativeRegisterMs(s.port, `other${process.pid}`, '127.0.0.2')
    const health = await timedGet(`http://127.0.0.1:${http}/healthz`, 3000)
    const healthOther = await timedGet(`http://127.0.0.1:${http}/healthz`, 3000, '127.0.0.2')
    const closedByServer = conns.filter((c) => c.closed()).length
    for (const c of conns) c.socket.destroy()
    return {
      flood: Number(values.flood),
      connectFailed,
      closedByServer,
      stillOpen: conns.length - closedByServer,
      floodSeconds: round(floodMs / 1000, 2),
      serverAlive: alive ? 1 : 0,
      fdsBefore,
      fdsAfter,
      nativeRegisterMs: round(registerMs, 0),
      nativeRegisterOtherAddressMs: round(registerOtherMs, 0),
      healthzStatus: health.status,
      healthzMs: round(health.ms, 0),
      healthzOtherAddressStatus: healthOther.status,
      healthzOtherAddressMs: round(healthOther.ms, 0),
    }
  } finally {
    await s.stop()
  }
}

const mode = values.mode
if (mode !== 'timeout' && mode !== 'flood') throw new Error('--mode timeout|flood')
await repeat(
  mode === 'timeout'
    ? `finding 4: one silent connection per listener, --login-timeout ${LOGIN_TIMEOUT}, watched ${WATCH} ms`
    : `finding 4: ${values.flood} silent 004 connections under --nofile=${values.nofile}, per-address caps ${values.caps}`,
  Number(values.runs),
  mode === 'timeout' ? timeout : flood,
)
process.exit(0)
