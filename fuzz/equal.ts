/**
 * The fuzz targets' round-trip and split checks, without `assert.deepStrictEqual` on the hot path: Node's deep
 * equality costs several microseconds a call (it was the largest part of the harness's own time in the native
 * target). `sameValue` is a structural equality that is never looser than `assert.deepStrictEqual` for what
 * the codecs return (primitives, plain objects, arrays, Buffers); whatever else it meets, or any difference it
 * sees, goes to `assert.deepStrictEqual`, which then passes or throws as before.
 */
import assert from 'node:assert/strict'

const OBJECT = Object.prototype
const ARRAY = Array.prototype
const hasOwn = Object.hasOwn

/**
 * True only when `assert.deepStrictEqual(a, b)` would pass, for values without symbol keys whose arrays and
 * Buffers have no properties besides their elements, which is all the codecs make (listing those would cost
 * more than the rest of the check: an array allocated per object); false when they differ or it cannot tell.
 */
export function sameValue(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  const proto = Object.getPrototypeOf(a) as unknown
  if (proto !== Object.getPrototypeOf(b)) return false
  if (Buffer.isBuffer(a)) return a.equals(b as Buffer)
  if (proto === ARRAY) {
    const x = a as unknown[]
    const y = b as unknown[]
    if (x.length !== y.length) return false
    for (let i = 0; i < x.length; i++) {
      const v = x[i]
      if (!sameValue(v, y[i])) return false
      if (v === undefined && i in x !== i in y) return false // a hole is not an undefined
    }
    return true
  }
  if (proto !== OBJECT && proto !== null) return false
  const x = a as Record<string, unknown>
  const y = b as Record<string, unknown>
  // for…in and hasOwn: Object.keys without its array
  let n = 0
  for (const k in x) {
    if (!hasOwn(x, k)) continue
    n++
    if (!hasOwn(y, k) || !sameValue(x[k], y[k])) return false
  }
  for (const k in y) if (hasOwn(y, k)) n--
  return n === 0
}

/** `assert.deepStrictEqual(actual, expected, message)`, checked cheaply first. */
export function assertSame(actual: unknown, expected: unknown, message?: string): void {
  if (!sameValue(actual, expected)) assert.deepStrictEqual(actual, expected, message)
}
