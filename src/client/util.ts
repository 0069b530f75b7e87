/** Small helpers the SDK's modules share; not part of the public surface (index.ts does not export them). */
import type { Address } from '../core/types.js'
import type { FileDescriptor, Target } from './types.js'

/** Buffer where there is one (Node, or a browser polyfill the codec needs anyway). */
export function toBuffer(b: Uint8Array | string): Buffer {
  return typeof b === 'string'
    ? Buffer.from(b, 'utf8')
    : Buffer.isBuffer(b)
      ? b
      : Buffer.from(b.buffer, b.byteOffset, b.byteLength)
}

/** Timers must not keep a Node process alive; browsers have no unref. */
export function unref(t: ReturnType<typeof setTimeout> | ReturnType<typeof setInterval>): void {
  ;(t as { unref?: () => void }).unref?.()
}

export function addressOf(to: Target): Address {
  if (typeof to !== 'string') return to
  if (to === 'ALL' || to === '*') return { kind: 'all' }
  if (to === 'SERVER') return { kind: 'server' }
  return { kind: 'name', name: to }
}

export function parseFileBody(body: Buffer): FileDescriptor | undefined {
  try {
    const o = JSON.parse(body.toString('utf8')) as Record<string, unknown>
    if (typeof o.fileId !== 'string' || typeof o.name !== 'string' || typeof o.size !== 'number' || typeof o.sha256 !== 'string')
      return undefined
    const f: FileDescriptor = { fileId: o.fileId, name: o.name, size: o.size, sha256: o.sha256 }
    if (typeof o.text === 'string') f.text = o.text
    return f
  } catch {
    return undefined
  }
}

export type Listener<T> = (ev: T) => void

/** A typed event emitter: a listener's fault never reaches the emitter (listeners own their errors). */
export class Emitter<Events> {
  private readonly listeners = new Map<keyof Events, Set<Listener<never>>>()

  on<E extends keyof Events>(event: E, fn: Listener<Events[E]>): void {
    let set = this.listeners.get(event)
    if (set === undefined) this.listeners.set(event, (set = new Set()))
    set.add(fn as Listener<never>)
  }

  off<E extends keyof Events>(event: E, fn: Listener<Events[E]>): void {
    this.listeners.get(event)?.delete(fn as Listener<never>)
  }

  count(event: keyof Events): number {
    return this.listeners.get(event)?.size ?? 0
  }

  emit<E extends keyof Events>(event: E, ev: Events[E]): void {
    const set = this.listeners.get(event)
    if (set === undefined) return
    for (const fn of [...set]) {
      try {
        ;(fn as Listener<Events[E]>)(ev)
      } catch {
        // A listener's fault must not break the frame loop.
      }
    }
  }
}
