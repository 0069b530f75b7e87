/**
 * The encoded-frame cache of room messages: a room message is the same frame for every receiver of one protocol
 * (and variant), so each adapter encodes it once and writes the same Buffer to N sessions. The cache belongs to
 * the adapters, not to the core's Message: a WeakMap keyed by the message, gone with it.
 */
import type { Message } from '../core/types.js'

const encoded = new WeakMap<Message, Map<string, Buffer>>()

/** `m` encoded for `key` (a protocol name, with a variant if its frames differ by receiver), encoded once. */
export function encodeOnce(m: Message, key: string, encode: () => Buffer): Buffer {
  let byKey = encoded.get(m)
  if (byKey === undefined) {
    byKey = new Map()
    encoded.set(m, byKey)
  }
  let buf = byKey.get(key)
  if (buf === undefined) {
    buf = encode()
    byKey.set(key, buf)
  }
  return buf
}
