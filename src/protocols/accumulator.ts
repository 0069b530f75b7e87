/**
 * Bytes read and not decoded yet, kept so that appending is linear in the bytes received whatever the write
 * sizes: the backing buffer grows by doubling and each append copies only the new bytes. A peer that sends a
 * large frame one byte per write would otherwise have the whole partial frame copied again on every write
 * (quadratic in the frame's size). Pure: no I/O.
 */
const EMPTY = Buffer.alloc(0)

export class ByteAccumulator {
  private buf: Buffer = EMPTY
  private len = 0

  get length(): number {
    return this.len
  }

  /** Append a copy of `bytes`. `cap`: the backing need not grow beyond this many bytes (the frame's size, when known). */
  append(bytes: Buffer, cap = Number.POSITIVE_INFINITY): void {
    if (bytes.length === 0) return
    const want = this.len + bytes.length
    if (want > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(want, Math.min(cap, Math.max(256, this.buf.length * 2))))
      this.buf.copy(next, 0, 0, this.len)
      this.buf = next
    }
    bytes.copy(this.buf, this.len)
    this.len = want
  }

  /** What is held (a view: valid until the next append or take). */
  view(): Buffer {
    return this.buf.subarray(0, this.len)
  }

  /** What is held, and forget it: the accumulator starts empty (the returned view stays valid). */
  take(): Buffer {
    const v = this.view()
    this.buf = EMPTY
    this.len = 0
    return v
  }
}

/**
 * `held` (bytes not decoded yet, possibly a view of an earlier result) followed by `chunk`, for decoders that
 * keep their remainder as a Buffer and consume it from the front. While `held` is the tail of `backing` the
 * chunk is copied in place; otherwise both move to a new backing twice the size they need. Each byte is copied
 * a bounded number of times on average, so reassembly stays linear however small the writes.
 */
export class TailBuffer {
  private backing: Buffer = EMPTY
  private used = 0

  append(held: Buffer, chunk: Buffer): Buffer {
    if (held.length === 0) {
      // Nothing pending: the chunk itself is the remainder, and the old backing can go.
      this.backing = EMPTY
      this.used = 0
      return chunk
    }
    if (chunk.length === 0) return held
    const end = held.byteOffset + held.length
    const ours =
      held.buffer === this.backing.buffer &&
      end === this.backing.byteOffset + this.used &&
      held.byteOffset >= this.backing.byteOffset
    if (ours && this.used + chunk.length <= this.backing.length) {
      chunk.copy(this.backing, this.used)
      this.used += chunk.length
      return this.backing.subarray(held.byteOffset - this.backing.byteOffset, this.used)
    }
    const live = held.length + chunk.length
    const next = Buffer.allocUnsafeSlow(Math.max(4096, live * 2))
    held.copy(next, 0)
    chunk.copy(next, held.length)
    this.backing = next
    this.used = live
    return next.subarray(0, live)
  }
}
