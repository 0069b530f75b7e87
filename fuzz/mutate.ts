/**
 * The mutation engine of `npm run fuzz`: a seeded PRNG, byte-level mutations in the style of libFuzzer/AFL
 * (bit flips, interesting integers at random offsets in both byte orders, inserts, deletes, duplicated
 * ranges, splices of two corpus entries, dictionary tokens), and a corpus that grows with every input whose
 * outcome class has not been seen before (the target's signature: which frame, which error, which branch).
 */

/** xorshift128+, seeded: a run is repeatable from its seed. */
export class Rng {
  private s0: number
  private s1: number
  constructor(seed: number) {
    this.s0 = (seed ^ 0x9e3779b9) >>> 0 || 1
    this.s1 = (Math.imul(seed, 0x85ebca6b) ^ 0xc2b2ae35) >>> 0 || 2
    for (let i = 0; i < 16; i++) this.u32()
  }
  u32(): number {
    let x = this.s0
    const y = this.s1
    this.s0 = y
    x ^= x << 23
    x ^= x >>> 17
    x ^= y ^ (y >>> 26)
    this.s1 = x >>> 0
    return (this.s0 + this.s1) >>> 0
  }
  /** 0 ≤ n < max */
  int(max: number): number {
    return max <= 1 ? 0 : this.u32() % max
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!
  }
  chance(oneIn: number): boolean {
    return this.int(oneIn) === 0
  }
}

export const BYTES = [0x00, 0x01, 0x02, 0x07, 0x0a, 0x0d, 0x20, 0x23, 0x40, 0x7f, 0x80, 0xc0, 0xc3, 0xed, 0xef, 0xf0, 0xfe, 0xff]
export const U16 = [
  0, 1, 2, 3, 4, 7, 8, 9, 23, 24, 25, 0x7f, 0x80, 0xff, 0x100, 0x3ff, 0x400, 0x401, 0x7fff, 0x8000, 0xfffe, 0xffff,
]
export const U32 = [
  0, 1, 4, 5, 8, 9, 0xff, 0xffff, 0x10000, 0xfffff, 0x100000, 0x100001, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff,
]

export class Mutator {
  /** The input being mutated, in place, in `work[0, len)`: one copy in and one out per input, where each
   * mutation used to make a new Buffer (Buffer.concat). The same mutations, byte for byte, for the same
   * random numbers (`npm run fuzz -- --self-test` compares the two). */
  private work = Buffer.allocUnsafe(1 << 14)
  private len = 0
  private readonly ins = Buffer.allocUnsafe(64)

  constructor(
    private readonly rng: Rng,
    private readonly maxLen: number,
    private readonly dict: readonly Buffer[],
  ) {}

  /** 1..8 stacked mutations of `base`; `other` is a second corpus entry for splicing. */
  mutate(base: Buffer, other: Buffer): Buffer {
    this.len = 0
    this.room(base.length)
    base.copy(this.work, 0)
    this.len = base.length
    const n = 1 + (this.rng.chance(2) ? 0 : this.rng.int(8))
    for (let i = 0; i < n; i++) this.once(other)
    const out = Buffer.allocUnsafe(Math.min(this.len, this.maxLen))
    this.work.copy(out, 0, 0, out.length)
    return out
  }

  /** Room for `n` bytes in `work`, keeping its first `len`. */
  private room(n: number): void {
    if (n <= this.work.length) return
    const w = Buffer.allocUnsafe(Math.max(n, 2 * this.work.length))
    this.work.copy(w, 0, 0, this.len)
    this.work = w
  }

  /** Make `n` bytes of room at `o` (what follows moves up); returns nothing, `len` grows by `n`. */
  private open(o: number, n: number): void {
    this.room(this.len + n)
    this.work.copyWithin(o + n, o, this.len)
    this.len += n
  }

  private once(other: Buffer): void {
    const r = this.rng
    const len = this.len
    const b = this.work
    // (no closure for "a random offset": tsx names every arrow function it makes, and this runs ~5 times an input)
    switch (r.int(13)) {
      case 0:
        if (len > 0) b[r.int(len)]! ^= 1 << r.int(8)
        return
      case 1:
        if (len > 0) b[r.int(len)] = r.int(256)
        return
      case 2:
        if (len > 0) b[r.int(len)] = r.pick(BYTES)
        return
      case 3: {
        if (len < 2) return
        const o = r.int(len - 1)
        const v = r.chance(3) ? (len + r.int(9) - 4) & 0xffff : r.pick(U16)
        if (r.chance(2)) b.writeUInt16BE(v, o)
        else b.writeUInt16LE(v, o)
        return
      }
      case 4: {
        if (len < 4) return
        const o = r.int(len - 3)
        const v = r.chance(3) ? (len + r.int(9) - 4) >>> 0 : r.pick(U32)
        if (r.chance(2)) b.writeUInt32BE(v, o)
        else b.writeUInt32LE(v, o)
        return
      }
      case 5: {
        // insert 1..16 random bytes
        const n = 1 + r.int(16)
        for (let i = 0; i < n; i++) this.ins[i] = r.chance(2) ? r.pick(BYTES) : r.int(256)
        const o = r.int(len + 1)
        this.open(o, n)
        this.ins.copy(this.work, o, 0, n)
        return
      }
      case 6: {
        // delete 1..16 bytes
        if (len === 0) return
        const o = r.int(len)
        const n = 1 + r.int(Math.min(16, len - o))
        b.copyWithin(o, o + n, len)
        this.len = len - n
        return
      }
      case 7: {
        // duplicate a range of 1..64 bytes at another place
        if (len === 0) return
        const o = r.int(len)
        const n = 1 + r.int(Math.min(64, len - o))
        const to = r.int(len + 1)
        b.copy(this.ins, 0, o, o + n)
        this.open(to, n)
        this.ins.copy(this.work, to, 0, n)
        return
      }
      case 8: {
        // splice: our head, the other's tail
        const o = r.int(len + 1)
        const p = r.int(other.length + 1)
        this.len = o
        this.room(o + other.length - p)
        other.copy(this.work, o, p)
        this.len = o + other.length - p
        return
      }
      case 9:
        if (len > 0) this.len = r.int(len)
        return
      case 10: {
        if (this.dict.length === 0) return
        const tok = r.pick(this.dict)
        const o = r.int(len + 1)
        if (r.chance(2) && o + tok.length <= len) {
          tok.copy(b, o)
          return
        }
        this.open(o, tok.length)
        tok.copy(this.work, o)
        return
      }
      case 11:
        if (len > 0) {
          const o = r.int(len)
          b[o] = (b[o]! + (r.chance(2) ? 1 : -1) * (1 + r.int(35))) & 0xff
        }
        return
      default:
        // the whole input twice (coalesced frames), or the other entry appended
        if (r.chance(2)) {
          this.room(2 * len)
          this.work.copy(this.work, len, 0, len)
          this.len = 2 * len
        } else {
          this.room(len + other.length)
          other.copy(this.work, len)
          this.len = len + other.length
        }
    }
  }
}

/** Inputs worth mutating: the seeds, then every input that reached an outcome class not seen before. */
export class Corpus {
  readonly entries: Buffer[] = []
  private readonly seen = new Set<string>()
  constructor(
    private readonly rng: Rng,
    private readonly cap = 20_000,
  ) {}
  /** True when `signature` is new (the input joins the corpus). */
  offer(input: Buffer, signature: string): boolean {
    if (this.seen.has(signature)) return false
    this.seen.add(signature)
    this.add(input)
    return true
  }
  add(input: Buffer): void {
    if (this.entries.length < this.cap) this.entries.push(input)
    else this.entries[this.rng.int(this.cap)] = input
  }
  pick(): Buffer {
    return this.entries.length === 0 ? Buffer.alloc(0) : this.rng.pick(this.entries)
  }
  get signatures(): number {
    return this.seen.size
  }
}

/** An outcome class from a decoder's detail text: numbers and quoted values are not part of the class.
 * `detail.replace(/\d+/g, '#').replace(/"[^"]*"/g, '"…"').slice(0, 120)` in one pass without regexes, as it runs
 * on most inputs (`npm run fuzz -- --self-test` checks that the two agree). */
export function shape(detail: string): string {
  let out = ''
  const n = detail.length
  let i = 0
  while (i < n && out.length < 120) {
    const c = detail.charCodeAt(i)
    if (c >= 48 && c <= 57) {
      out += '#'
      while (i < n && detail.charCodeAt(i) >= 48 && detail.charCodeAt(i) <= 57) i++
    } else if (c === 34 && detail.indexOf('"', i + 1) !== -1) {
      out += '"…"'
      i = detail.indexOf('"', i + 1) + 1
    } else {
      let j = i + 1
      while (j < n) {
        const d = detail.charCodeAt(j)
        if ((d >= 48 && d <= 57) || d === 34) break
        j++
      }
      out += detail.slice(i, j)
      i = j
    }
  }
  return out.length > 120 ? out.slice(0, 120) : out
}

/** The regex form of `shape`, for the self-test. */
export function shapeByRegex(detail: string): string {
  return detail
    .replace(/\d+/g, '#')
    .replace(/"[^"]*"/g, '"…"')
    .slice(0, 120)
}
