/**
 * Waiting in tests: on a condition, polled until a deadline, never for a fixed time. A test that sleeps "long
 * enough" passes or fails with the machine's load; a test that waits for the state it needs is only slower on a
 * slow machine. For "nothing arrives", send a marker after the thing that must not arrive, on the same ordered
 * path, and assert the marker comes first (or alone): that cannot pass by timing.
 */
import { setTimeout as delay } from 'node:timers/promises'

/** Anything but these counts as "the condition holds". */
type Falsy = undefined | null | false

/**
 * Poll `cond` every `everyMs` until it returns a value other than undefined, null or false, and return that
 * value; throw (naming `what`) after `timeoutMs`. `cond` may be async (a query to the server or a database).
 * @example const msg = await until('bob to get it', () => bob.got.find((m) => m.body === 'hi'))
 */
export async function until<T>(
  what: string,
  cond: () => T | Falsy | Promise<T | Falsy>,
  timeoutMs = 5000,
  everyMs = 10,
): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await cond()
    if (v !== undefined && v !== null && v !== false) return v
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await delay(everyMs)
  }
}

/**
 * Let `ms` of wall-clock time pass. Only for tests whose subject IS elapsed time (a timeout, a TTL, a rate
 * that refills); say so where it is called. Anything else waits with until().
 */
export function elapse(ms: number): Promise<void> {
  return delay(ms)
}
