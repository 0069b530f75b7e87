/**
 * Passwords: a memory-hard hash (scrypt, from Node's crypto — OpenSSL's — run on libuv's thread pool, never on
 * the event loop), stored self-describing as `scrypt$N$r$p$salt$hash` (base64url) so the cost can be raised
 * later without breaking stored hashes; and the rate limit on login attempts, per name and per address.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto'
import { BrokerError } from './errors.js'

/** 2^15 × 8 × 128 bytes = 32 MiB per hash: OWASP's scrypt floor is N=2^17 with r=8 at 128 MiB; 2^15 keeps a login
 * near 60 ms on a small machine while costing an attacker the same memory per guess. */
const COST: ScryptCost = { N: 1 << 15, r: 8, p: 1 }

/** scrypt's parameters for new hashes. A stored hash names its own, so verifying needs none. */
export interface ScryptCost {
  N: number
  r: number
  p: number
}
const KEY_BYTES = 32
const SALT_BYTES = 16
/** Passwords are at most this long (UTF-8 bytes): longer ones are refused, not silently cut. */
export const MAX_PASSWORD_BYTES = 256
export const MIN_PASSWORD_CHARS = 8

function derive(password: string, salt: Buffer, o: { N: number; r: number; p: number }): Promise<Buffer> {
  const opts: ScryptOptions = { N: o.N, r: o.r, p: o.p, maxmem: 256 * o.N * o.r + 1024 * 1024 }
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFC'), salt, KEY_BYTES, opts, (err, key) => (err ? reject(err) : resolve(key))),
  )
}

/** A password a user may set: long enough, not too long. */
export function checkPassword(password: string): void {
  if ([...password].length < MIN_PASSWORD_CHARS)
    throw new BrokerError('SB_ERR_PASSWORD_INVALID', `a password has at least ${MIN_PASSWORD_CHARS} characters`)
  if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES)
    throw new BrokerError('SB_ERR_PASSWORD_INVALID', `a password has at most ${MAX_PASSWORD_BYTES} bytes`)
}

export async function hashPassword(password: string, cost: ScryptCost = COST): Promise<string> {
  const salt = randomBytes(SALT_BYTES)
  const key = await derive(password, salt, cost)
  return `scrypt$${cost.N}$${cost.r}$${cost.p}$${salt.toString('base64url')}$${key.toString('base64url')}`
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number]
  const salt = Buffer.from(parts[4]!, 'base64url')
  const want = Buffer.from(parts[5]!, 'base64url')
  if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES) return false
  const key = await derive(password, salt, { N, r, p })
  return key.length === want.length && timingSafeEqual(key, want)
}

/**
 * Failed-login budget per key (a name, an address): `burst` attempts, refilled at `perMinute`. Only failures
 * spend it, so a user who types the password right is never slowed by someone guessing at its name from
 * elsewhere more than the name's budget allows.
 */
export class LoginLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>()

  constructor(
    private readonly perMinute: number,
    private readonly burst: number,
    private readonly now: () => number,
  ) {}

  /** Throws SB_ERR_RATE_LIMITED when `key` has no attempt left. */
  check(key: string, what: string): void {
    const b = this.refill(key)
    if (b !== undefined && b.tokens < 1) {
      const waitMs = Math.ceil(((1 - b.tokens) * 60_000) / this.perMinute)
      const err = new BrokerError(
        'SB_ERR_RATE_LIMITED',
        `too many failed logins for ${what}: try again in ${Math.ceil(waitMs / 1000)} s`,
        'loginAttempts',
      )
      err.retryAfterMs = waitMs
      throw err
    }
  }

  /** A failed attempt spends one. */
  fail(key: string): void {
    const b = this.refill(key) ?? { tokens: this.burst, at: this.now() }
    b.tokens -= 1
    this.buckets.set(key, b)
    if (this.buckets.size > 100_000) this.prune()
  }

  private refill(key: string): { tokens: number; at: number } | undefined {
    const b = this.buckets.get(key)
    if (b === undefined) return undefined
    const now = this.now()
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) * this.perMinute) / 60_000)
    b.at = now
    return b
  }

  private prune(): void {
    for (const key of [...this.buckets.keys()]) if ((this.refill(key)?.tokens ?? 0) >= this.burst) this.buckets.delete(key)
  }
}
