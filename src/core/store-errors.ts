/**
 * Where the core meets the store's errors. A Store raises StoreError with its own codes (src/store/errors.ts) and
 * refuses queue copies with a reason (QueueRefusal); each becomes the BrokerError an adapter can put on its wire
 * (the code table is fromStoreError in errors.ts, so asBrokerError knows it too). The Broker wraps its store with `guardStore`, so every store call the core (or an adapter reaching
 * through `broker.store`) makes fails with a BrokerError or an internal fault, never with a StoreError.
 */
import { BrokerError, fromStoreError } from './errors.js'
import type { QueueRefusal, Store } from '../store/store.js'
import type { Limits, Logger } from './types.js'
import { isStoreError } from '../store/errors.js'

/** Calls whose success shows that the store can write again after it was full. */
const WRITING = new Set(['commit', 'createUser', 'ping'])

/**
 * The store, with every method's StoreError mapped by fromStoreError. Other properties (a backend's own, such
 * as PostgresStore's `query` used by its file metadata) pass through, their errors mapped the same way.
 */
export function guardStore<S extends Store>(store: S, log?: Logger): S {
  // Keyed by the method itself, so a method replaced on the store later (a test's failing ping) is seen.
  const wrapped = new WeakMap<object, unknown>()
  // A full disk is logged once when writes start failing (naming the data directory) and once when they work again.
  let full = false
  const fail = (err: unknown): unknown => {
    if (isStoreError(err) && err.code === 'FULL' && !full) {
      full = true
      log?.error(
        { err, dataDir: err.where },
        `storage full: writes to ${err.where ?? 'the store'} are refused until there is space`,
      )
    }
    return fromStoreError(err)
  }
  const ok = (prop: PropertyKey): void => {
    if (full && WRITING.has(String(prop))) {
      full = false
      log?.info({}, 'storage writable again: the store accepts writes')
    }
  }
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver)
      if (typeof value !== 'function') return value
      let fn = wrapped.get(value)
      if (fn === undefined) {
        const method = value as (...args: unknown[]) => unknown
        fn = (...args: unknown[]): unknown => {
          let out: unknown
          try {
            out = method.apply(target, args)
          } catch (err) {
            throw fail(err)
          }
          if (out instanceof Promise)
            return out.then(
              (v: unknown) => {
                ok(prop)
                return v
              },
              (err: unknown) => {
                throw fail(err)
              },
            )
          return out
        }
        wrapped.set(value, fn)
      }
      return fn
    },
  })
}

/**
 * The error for a direct send whose one copy the store refused, naming the limit the queue is at (a queue full by
 * bytes names maxQueueBytes, by length maxQueueLength); a recipient deleted since it was resolved is unknown.
 */
export function refusedCopy(recipient: string, why: QueueRefusal | null | undefined, limits: Limits): BrokerError {
  switch (why) {
    case 'no-such-user':
      return new BrokerError('SB_ERR_UNKNOWN_RECIPIENT', `no such user: ${recipient}`)
    case 'queue-bytes':
      return new BrokerError(
        'SB_ERR_QUEUE_FULL',
        `the queue of ${recipient} is full: it holds maxQueueBytes (${limits.maxQueueBytes} bytes)`,
        'maxQueueBytes',
      )
    default:
      return new BrokerError(
        'SB_ERR_QUEUE_FULL',
        `the queue of ${recipient} is full: it holds maxQueueLength (${limits.maxQueueLength} messages)`,
        'maxQueueLength',
      )
  }
}

/** The error for a topic send every subscriber's queue refused: the limit named is the one most of them hit. */
export function refusedTopic(topic: string, why: readonly (QueueRefusal | null)[] | undefined): BrokerError {
  const bytes = why?.filter((w) => w === 'queue-bytes').length ?? 0
  const length = why?.filter((w) => w === 'queue-length').length ?? 0
  const limit = bytes > length ? 'maxQueueBytes' : 'maxQueueLength'
  return new BrokerError('SB_ERR_QUEUE_FULL', `every subscriber's queue of "${topic}" is full (${limit})`, limit)
}
