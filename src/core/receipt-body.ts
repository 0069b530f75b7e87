/**
 * A receipt that waits in an offline sender's queue is stored as a message of kind 'receipt' whose body
 * is this JSON; the broker turns it back into a receipt event when it delivers it.
 */
import type { Receipt } from './types.js'

export function encodeReceiptBody(r: Receipt): Buffer {
  return Buffer.from(JSON.stringify(r))
}

export function decodeReceiptBody(body: Buffer): Receipt | undefined {
  try {
    const r = JSON.parse(body.toString('utf8')) as Receipt
    if (typeof r.msgId !== 'number' || typeof r.status !== 'number' || typeof r.recipient !== 'number') return undefined
    return r
  } catch {
    return undefined
  }
}
