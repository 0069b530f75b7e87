/**
 * Issue 13 finding 5: how many logins and registrations one address gets answered on the native protocol.
 *
 * `--mode login`: `--window` connections each send LOGINs with a wrong token for an existing user, one after the
 * other (the next when the last is answered), for `--seconds`; a new connection replaces one the server closed.
 * `--mode register`: `--window` clients at a time each connect, REGISTER a new name and hang up, for `--seconds`.
 *
 * Every answer is counted by what it says: WELCOME, "wrong token" (SB_ERR_AUTH), refused by a rate limit
 * (SB_ERR_RATE_LIMITED, or any ERROR naming authRatePerSecond), or something else; printed as counts and per second
 * over the whole window (the first second includes the bucket's burst).
 *
 *   node --import tsx bench/probes/hostile/auth-rate.ts --mode login --seconds 5 --runs 3
 *   node --import tsx bench/probes/hostile/auth-rate.ts --mode register --seconds 5 --runs 3
 */
import { parseArgs } from 'node:util'
import { ErrorNumbers } from '../../../src/core/errors.js'
import type { Frame } from '../../../src/protocols/native/frames.js'
import { NativeClient } from '../../../test/helpers/native-client.js'
import { repeat, round, sleep, startServer, type Figures } from './common.js'

const { values } = parseArgs({
  options: {
    mode: { type: 'string', default: 'login' },
    seconds: { type: 'string', default: '5' },
    window: { type: 'string', default: '8' },
    runs: { type: 'string', default: '1' },
  },
})
const SECONDS = Number(values.seconds)
const WINDOW = Number(values.window)
const mode = values.mode!
if (mode !== 'login' && mode !== 'register') throw new Error('--mode login|register')

type Kind = 'welcome' | 'wrongToken' | 'rateLimited' | 'other' | 'failed'

function kindOf(f: Frame): Kind {
  if (f.type === 'WELCOME') return 'welcome'
  if (f.type !== 'ERROR') return 'other'
  if (f.limit === 'authRatePerSecond' || f.code === ErrorNumbers.SB_ERR_RATE_LIMITED) return 'rateLimited'
  if (f.code === ErrorNumbers.SB_ERR_AUTH) return 'wrongToken'
  return 'other'
}

async function measure(): Promise<Figures> {
  const s = await startServer(['--http-port', '-1'])
  try {
    const counts: Record<Kind, number> = { welcome: 0, wrongToken: 0, rateLimited: 0, other: 0, failed: 0 }
    const others = new Map<string, number>()
    const note = (f: Frame): void => {
      const k = kindOf(f)
      counts[k]++
      if (k === 'other' || k === 'rateLimited') {
        const key = f.type === 'ERROR' ? `ERROR ${f.code} ${f.limit} ${f.message.slice(0, 60)}` : f.type
        others.set(key, (others.get(key) ?? 0) + 1)
      }
    }
    let connections = 0
    let deadline = 0
    if (mode === 'login') {
      const victim = await NativeClient.connect(s.port)
      const w = await victim.register(`victim${process.pid}`)
      victim.destroy()
      // A full bucket at the start, as for a client that has not logged in for a while.
      await sleep(2000)
      deadline = performance.now() + SECONDS * 1000
      // One LOGIN in flight per connection: a second one on the same connection is refused as "already logging in".
      await Promise.all(
        Array.from({ length: WINDOW }, async () => {
          let c = await NativeClient.connect(s.port)
          connections++
          while (performance.now() < deadline) {
            try {
              note(await c.request({ type: 'LOGIN', version: 1, flags: 0, id: w.id, name: '', token: 'wrong' }, 10_000))
            } catch {
              counts.failed++
            }
            if (c.isClosed) {
              c = await NativeClient.connect(s.port)
              connections++
            }
          }
          c.destroy()
        }),
      )
    } else {
      let n = 0
      deadline = performance.now() + SECONDS * 1000
      await Promise.all(
        Array.from({ length: WINDOW }, async () => {
          while (performance.now() < deadline) {
            let c: NativeClient | undefined
            try {
              c = await NativeClient.connect(s.port)
              connections++
              note(await c.request({ type: 'REGISTER', version: 1, flags: 0, name: `r${process.pid % 1000}x${n++}` }, 10_000))
            } catch {
              counts.failed++
            } finally {
              c?.destroy()
            }
          }
        }),
      )
    }
    if (others.size > 0) console.log(`# answers other than WELCOME/wrong token: ${JSON.stringify(Object.fromEntries(others))}`)
    return {
      seconds: SECONDS,
      connections,
      welcome: counts.welcome,
      wrongToken: counts.wrongToken,
      rateLimited: counts.rateLimited,
      other: counts.other,
      failed: counts.failed,
      welcomePerSecond: round(counts.welcome / SECONDS),
      wrongTokenPerSecond: round(counts.wrongToken / SECONDS),
      rateLimitedPerSecond: round(counts.rateLimited / SECONDS),
    }
  } finally {
    await s.stop()
  }
}

await repeat(
  `finding 5: ${mode === 'login' ? 'wrong-token LOGINs, one at a time per connection' : 'REGISTERs, a connection each'}, ${WINDOW} in flight, ${SECONDS} s, one address`,
  Number(values.runs),
  measure,
)
process.exit(0)
