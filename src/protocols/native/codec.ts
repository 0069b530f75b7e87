/**
 * Native protocol codec: pure functions over Buffers, driven by the FRAMES table. No I/O, no clock.
 * decode() never throws on untrusted bytes; the frame size cap is checked from the length prefix before
 * anything is allocated or copied.
 */
import type { Address } from '../../core/types.js'
import { ByteAccumulator } from '../accumulator.js'
import {
  AddrKind,
  FRAME_BY_CODE,
  FRAMES,
  HEADER_BYTES,
  type FieldType,
  type Frame,
  type FrameName,
  type WireItem,
  type WireMessage,
  type WireUser,
} from './frames.js'

export type Decoded =
  | { ok: true; frame: Frame; rest: Buffer }
  | { ok: false; reason: 'need-more' }
  /** The frame is larger than the limit: `skip` bytes (the whole frame) may be discarded and the stream goes on. */
  | { ok: false; reason: 'too-large'; size: number; skip: number; corr: number; type: number }
  | { ok: false; reason: 'malformed'; detail: string; corr: number }

const MAX_U53 = Number.MAX_SAFE_INTEGER
// ignoreBOM: a leading U+FEFF stays in the string (a name starting with one is refused, not silently changed).
const textDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

class Malformed extends Error {}

/** Reads fields from one frame's body; every read is bounds-checked. */
class Reader {
  off: number
  constructor(
    private readonly buf: Buffer,
    start: number,
    private readonly end: number,
  ) {
    this.off = start
  }
  need(n: number): void {
    if (this.off + n > this.end) throw new Malformed(`field runs past the end of the frame at byte ${this.off}`)
  }
  u8(): number {
    this.need(1)
    return this.buf[this.off++]!
  }
  u16(): number {
    this.need(2)
    const v = this.buf.readUInt16BE(this.off)
    this.off += 2
    return v
  }
  u32(): number {
    this.need(4)
    const v = this.buf.readUInt32BE(this.off)
    this.off += 4
    return v
  }
  u53(): number {
    this.need(8)
    const hi = this.buf.readUInt32BE(this.off)
    const lo = this.buf.readUInt32BE(this.off + 4)
    this.off += 8
    if (hi > 0x1fffff) throw new Malformed('integer larger than 2^53-1')
    return hi * 0x100000000 + lo
  }
  str(): string {
    const n = this.u16()
    this.need(n)
    const bytes = this.buf.subarray(this.off, this.off + n)
    this.off += n
    try {
      return textDecoder.decode(bytes)
    } catch {
      throw new Malformed('string is not valid UTF-8')
    }
  }
  bytes(): Buffer {
    const n = this.u32()
    this.need(n)
    // A copy, so that a retained body does not pin the whole socket chunk it arrived in.
    const b = Buffer.from(this.buf.subarray(this.off, this.off + n))
    this.off += n
    return b
  }
  addr(): Address {
    const k = this.u8()
    switch (k) {
      case AddrKind.USER:
        return { kind: 'user', id: this.u32() }
      case AddrKind.NAME:
        return { kind: 'name', name: this.str() }
      case AddrKind.ALL:
        return { kind: 'all' }
      case AddrKind.SERVER:
        return { kind: 'server' }
      case AddrKind.TOPIC:
        return { kind: 'topic', topic: this.str() }
      default:
        throw new Malformed(`unknown address kind ${k}`)
    }
  }
  /** In the order of MSG_FIELDS (the message schema); spelled out for speed, checked by test/unit/message-schema.test.ts. */
  msg(): WireMessage {
    return {
      seq: this.u53(),
      msgId: this.u53(),
      from: this.u32(),
      fromName: this.str(),
      to: this.u32(),
      topic: this.str(),
      kind: this.u8(),
      flags: this.u8(),
      ts: this.u53(),
      expiresAt: this.u53(),
      fileId: this.str(),
      body: this.bytes(),
    }
  }
  list<T>(item: () => T): T[] {
    const n = this.u16()
    const out: T[] = []
    for (let i = 0; i < n; i++) out.push(item())
    return out
  }
  user(): WireUser {
    return { id: this.u32(), name: this.str(), protocol: this.str(), since: this.u53(), lastSeen: this.u53() }
  }
  item(): WireItem {
    return { name: this.str(), count: this.u32() }
  }
  field(t: FieldType): unknown {
    switch (t) {
      case 'u8':
        return this.u8()
      case 'u16':
        return this.u16()
      case 'u32':
        return this.u32()
      case 'u53':
        return this.u53()
      case 'str':
        return this.str()
      case 'bytes':
        return this.bytes()
      case 'addr':
        return this.addr()
      case 'msg':
        return this.msg()
      case 'msgs':
        return this.list(() => this.msg())
      case 'users':
        return this.list(() => this.user())
      case 'items':
        return this.list(() => this.item())
    }
  }
}

/** Decode the first frame of `buf`. `maxFrameBytes` bounds the whole frame, length prefix included. */
export function decode(buf: Buffer, maxFrameBytes: number): Decoded {
  if (buf.length < 4) return { ok: false, reason: 'need-more' }
  const length = buf.readUInt32BE(0)
  const size = length + 4
  if (length < HEADER_BYTES - 4)
    return { ok: false, reason: 'malformed', detail: `frame length ${length} is shorter than its header`, corr: 0 }
  if (size > maxFrameBytes) {
    const type = buf.length >= 5 ? buf[4]! : 0
    const corr = buf.length >= HEADER_BYTES ? buf.readUInt32BE(5) : 0
    return { ok: false, reason: 'too-large', size, skip: size, corr, type }
  }
  if (buf.length < size) return { ok: false, reason: 'need-more' }
  const code = buf[4]!
  const corr = buf.readUInt32BE(5)
  const name = FRAME_BY_CODE.get(code)
  if (name === undefined) return { ok: false, reason: 'malformed', detail: `unknown frame type 0x${code.toString(16)}`, corr }
  const r = new Reader(buf, HEADER_BYTES, size)
  const frame: Record<string, unknown> = { type: name, corr }
  try {
    for (const [field, t] of FRAMES[name].fields) frame[field] = r.field(t)
  } catch (err) {
    if (err instanceof Malformed) return { ok: false, reason: 'malformed', detail: `${name}: ${err.message}`, corr }
    throw err
  }
  if (r.off !== size)
    return { ok: false, reason: 'malformed', detail: `${name}: ${size - r.off} bytes left over after the last field`, corr }
  return { ok: true, frame: frame as Frame, rest: buf.subarray(size) }
}

// ---------------------------------------------------------------- encoding

function strBytes(s: string): number {
  return 2 + Buffer.byteLength(s)
}

function msgBytes(m: WireMessage): number {
  return 8 + 8 + 4 + strBytes(m.fromName) + 4 + strBytes(m.topic) + 1 + 1 + 8 + 8 + strBytes(m.fileId) + 4 + m.body.length
}

function sizeOf(t: FieldType, v: unknown): number {
  switch (t) {
    case 'u8':
      return 1
    case 'u16':
      return 2
    case 'u32':
      return 4
    case 'u53':
      return 8
    case 'str':
      return strBytes(v as string)
    case 'bytes':
      return 4 + (v as Buffer).length
    case 'addr': {
      const a = v as Address
      if (a.kind === 'user') return 5
      if (a.kind === 'name') return 1 + strBytes(a.name)
      if (a.kind === 'topic') return 1 + strBytes(a.topic)
      return 1
    }
    case 'msg':
      return msgBytes(v as WireMessage)
    case 'msgs':
      return (v as WireMessage[]).reduce((n, m) => n + msgBytes(m), 2)
    case 'users':
      return (v as WireUser[]).reduce((n, u) => n + 4 + strBytes(u.name) + strBytes(u.protocol) + 16, 2)
    case 'items':
      return (v as WireItem[]).reduce((n, i) => n + strBytes(i.name) + 4, 2)
  }
}

class Writer {
  off = 0
  constructor(readonly buf: Buffer) {}
  u8(v: number): void {
    this.buf[this.off++] = v & 0xff
  }
  u16(v: number): void {
    this.buf.writeUInt16BE(v & 0xffff, this.off)
    this.off += 2
  }
  u32(v: number): void {
    this.buf.writeUInt32BE(v >>> 0, this.off)
    this.off += 4
  }
  u53(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0 || v > MAX_U53) throw new RangeError(`not a u53: ${v}`)
    this.buf.writeUInt32BE(Math.floor(v / 0x100000000), this.off)
    this.buf.writeUInt32BE(v >>> 0, this.off + 4)
    this.off += 8
  }
  str(s: string): void {
    const n = this.buf.write(s, this.off + 2, 'utf8')
    if (n > 0xffff) throw new RangeError('string longer than 65535 bytes')
    this.buf.writeUInt16BE(n, this.off)
    this.off += 2 + n
  }
  bytes(b: Buffer): void {
    this.u32(b.length)
    b.copy(this.buf, this.off)
    this.off += b.length
  }
  addr(a: Address): void {
    switch (a.kind) {
      case 'user':
        this.u8(AddrKind.USER)
        this.u32(a.id)
        return
      case 'name':
        this.u8(AddrKind.NAME)
        this.str(a.name)
        return
      case 'all':
        this.u8(AddrKind.ALL)
        return
      case 'server':
        this.u8(AddrKind.SERVER)
        return
      case 'topic':
        this.u8(AddrKind.TOPIC)
        this.str(a.topic)
        return
    }
  }
  /** In the order of MSG_FIELDS (the message schema); spelled out for speed, checked by test/unit/message-schema.test.ts. */
  msg(m: WireMessage): void {
    this.u53(m.seq)
    this.u53(m.msgId)
    this.u32(m.from)
    this.str(m.fromName)
    this.u32(m.to)
    this.str(m.topic)
    this.u8(m.kind)
    this.u8(m.flags)
    this.u53(m.ts)
    this.u53(m.expiresAt)
    this.str(m.fileId)
    this.bytes(m.body)
  }
  field(t: FieldType, v: unknown): void {
    switch (t) {
      case 'u8':
        return this.u8(v as number)
      case 'u16':
        return this.u16(v as number)
      case 'u32':
        return this.u32(v as number)
      case 'u53':
        return this.u53(v as number)
      case 'str':
        return this.str(v as string)
      case 'bytes':
        return this.bytes(v as Buffer)
      case 'addr':
        return this.addr(v as Address)
      case 'msg':
        return this.msg(v as WireMessage)
      case 'msgs': {
        const list = v as WireMessage[]
        this.u16(list.length)
        for (const m of list) this.msg(m)
        return
      }
      case 'users': {
        const list = v as WireUser[]
        this.u16(list.length)
        for (const u of list) {
          this.u32(u.id)
          this.str(u.name)
          this.str(u.protocol)
          this.u53(u.since)
          this.u53(u.lastSeen)
        }
        return
      }
      case 'items': {
        const list = v as WireItem[]
        this.u16(list.length)
        for (const i of list) {
          this.str(i.name)
          this.u32(i.count)
        }
        return
      }
    }
  }
}

/** Encode one frame. Throws RangeError for values that do not fit their field (a programming error). */
export function encode(frame: Frame): Buffer {
  const spec = FRAMES[frame.type as FrameName]
  const f = frame as unknown as Record<string, unknown>
  let size = HEADER_BYTES
  for (const [name, t] of spec.fields) size += sizeOf(t, f[name])
  const w = new Writer(Buffer.allocUnsafe(size))
  w.u32(size - 4)
  w.u8(spec.code)
  w.u32(frame.corr)
  for (const [name, t] of spec.fields) w.field(t, f[name])
  return w.buf
}

/**
 * Streaming decoder state for one connection: feed chunks, get frames; handles split and coalesced frames.
 * A partial frame is reassembled in a ByteAccumulator, so the work is linear in the bytes received whatever
 * the write sizes. `maxFrameBytes` may be changed between pushes (a connection accepts larger frames once it
 * has logged in); a frame already under way keeps the limit it was accepted with.
 */
export class FrameReader {
  private readonly partial = new ByteAccumulator()
  private skipping = 0
  /** A malformed frame was read: the stream cannot be trusted, nothing after it is decoded. */
  private broken = false

  constructor(public maxFrameBytes: number) {}

  /**
   * Append a chunk; returns the decoded results available now (frames, then at most one error). After a
   * malformed frame every later push returns nothing, however the bytes were split (found by npm run fuzz).
   */
  push(chunk: Buffer): Decoded[] {
    const out: Decoded[] = []
    if (this.broken) return out
    if (this.skipping > 0) {
      const n = Math.min(this.skipping, chunk.length)
      this.skipping -= n
      chunk = chunk.subarray(n)
    }
    if (this.partial.length > 0) {
      // Complete the pending frame with only the bytes it still needs, copying each byte once.
      const need = this.pendingSize()
      if (need === undefined) {
        // Fewer than 4 bytes, or a length the decoder will refuse: small, copied once.
        this.partial.append(chunk)
        this.decodeFrom(this.partial.take(), out)
        return out
      }
      const take = Math.min(need - this.partial.length, chunk.length)
      this.partial.append(chunk.subarray(0, take), need)
      chunk = chunk.subarray(take)
      if (this.partial.length < need) return out
      if (!this.decodeFrom(this.partial.take(), out)) return out
    }
    this.decodeFrom(chunk, out)
    return out
  }

  /** Whole size of the pending frame, when its length prefix is here and the frame is acceptable. */
  private pendingSize(): number | undefined {
    if (this.partial.length < 4) return undefined
    const size = this.partial.view().readUInt32BE(0) + 4
    if (size < HEADER_BYTES || size > this.maxFrameBytes) return undefined
    return size
  }

  /** Decode every frame of `data`; keep a copy of an incomplete tail. False after a malformed frame. */
  private decodeFrom(data: Buffer, out: Decoded[]): boolean {
    for (;;) {
      if (this.skipping > 0) {
        const n = Math.min(this.skipping, data.length)
        this.skipping -= n
        data = data.subarray(n)
        if (this.skipping > 0) return true
      }
      if (data.length === 0) return true
      const d = decode(data, this.maxFrameBytes)
      if (d.ok) {
        out.push(d)
        data = d.rest
        continue
      }
      if (d.reason === 'need-more') {
        // A copy: the tail must not pin the (possibly large) chunk it came in.
        this.partial.append(data, data.length >= 4 ? data.readUInt32BE(0) + 4 : Number.POSITIVE_INFINITY)
        return true
      }
      out.push(d)
      if (d.reason === 'malformed') {
        this.broken = true
        this.partial.take() // forget any held tail
        return false
      }
      // too large: drop the frame's bytes as they come, the connection goes on
      this.skipping = d.skip
    }
  }

  /** Bytes held waiting for the rest of a frame. */
  get pending(): number {
    return this.partial.length
  }
}
