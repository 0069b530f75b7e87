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

const BYTES = [0x00, 0x01, 0x02, 0x07, 0x0a, 0x0d, 0x20, 0x23, 0x40, 0x7f, 0x80, 0xc0, 0xc3, 0xed, 0xef, 0xf0, 0xfe, 0xff]
const U16 = [0, 1, 2, 3, 4, 7, 8, 9, 23, 24, 25, 0x7f, 0x80, 0xff, 0x100, 0x3ff, 0x400, 0x401, 0x7fff, 0x8000, 0xfffe, 0xffff]
const U32 = [0, 1, 4, 5, 8, 9, 0xff, 0xffff, 0x10000, 0xfffff, 0x100000, 0x100001, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff]

export class Mutator {
  constructor(
    private readonly rng: Rng,
    private readonly maxLen: number,
    private readonly dict: readonly Buffer[],
  ) {}

  /** 1..8 stacked mutations of `base`; `other` is a second corpus entry for splicing. */
  mutate(base: Buffer, other: Buffer): Buffer {
    let b: Buffer = Buffer.from(base)
    const n = 1 + (this.rng.chance(2) ? 0 : this.rng.int(8))
    for (let i = 0; i < n; i++) b = this.once(b, other)
    return b.length > this.maxLen ? b.subarray(0, this.maxLen) : b
  }

  private once(b: Buffer, other: Buffer): Buffer {
    const r = this.rng
    const len = b.length
    const at = () => r.int(len)
    switch (r.int(13)) {
      case 0:
        if (len > 0) b[at()]! ^= 1 << r.int(8)
        return b
      case 1:
        if (len > 0) b[at()] = r.int(256)
        return b
      case 2:
        if (len > 0) b[at()] = r.pick(BYTES)
        return b
      case 3: {
        if (len < 2) return b
        const o = r.int(len - 1)
        const v = r.chance(3) ? (len + r.int(9) - 4) & 0xffff : r.pick(U16)
        if (r.chance(2)) b.writeUInt16BE(v, o)
        else b.writeUInt16LE(v, o)
        return b
      }
      case 4: {
        if (len < 4) return b
        const o = r.int(len - 3)
        const v = r.chance(3) ? (len + r.int(9) - 4) >>> 0 : r.pick(U32)
        if (r.chance(2)) b.writeUInt32BE(v, o)
        else b.writeUInt32LE(v, o)
        return b
      }
      case 5: {
        const ins = Buffer.allocUnsafe(1 + r.int(16))
        for (let i = 0; i < ins.length; i++) ins[i] = r.chance(2) ? r.pick(BYTES) : r.int(256)
        const o = r.int(len + 1)
        return Buffer.concat([b.subarray(0, o), ins, b.subarray(o)])
      }
      case 6: {
        if (len === 0) return b
        const o = at()
        const n = 1 + r.int(Math.min(16, len - o))
        return Buffer.concat([b.subarray(0, o), b.subarray(o + n)])
      }
      case 7: {
        if (len === 0) return b
        const o = at()
        const n = 1 + r.int(Math.min(64, len - o))
        const to = r.int(len + 1)
        return Buffer.concat([b.subarray(0, to), b.subarray(o, o + n), b.subarray(to)])
      }
      case 8: {
        // splice: our head, the other's tail
        const o = r.int(len + 1)
        const p = r.int(other.length + 1)
        return Buffer.concat([b.subarray(0, o), other.subarray(p)])
      }
      case 9:
        return len === 0 ? b : b.subarray(0, at())
      case 10: {
        if (this.dict.length === 0) return b
        const tok = r.pick(this.dict)
        const o = r.int(len + 1)
        if (r.chance(2) && o + tok.length <= len) {
          tok.copy(b, o)
          return b
        }
        return Buffer.concat([b.subarray(0, o), tok, b.subarray(o)])
      }
      case 11:
        if (len > 0) {
          const o = at()
          b[o] = (b[o]! + (r.chance(2) ? 1 : -1) * (1 + r.int(35))) & 0xff
        }
        return b
      default:
        // the whole input twice (coalesced frames), or the other entry appended
        return r.chance(2) ? Buffer.concat([b, b]) : Buffer.concat([b, other])
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

/** An outcome class from a decoder's detail text: numbers and quoted values are not part of the class. */
export function shape(detail: string): string {
  return detail
    .replace(/\d+/g, '#')
    .replace(/"[^"]*"/g, '"…"')
    .slice(0, 120)
}
