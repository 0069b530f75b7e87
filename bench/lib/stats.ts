/**
 * Latency statistics. Workers record into a log-bucketed histogram (1 % relative precision,
 * fixed memory however many samples) and ship the sparse buckets to the coordinator, which
 * merges them; exact sorted-array percentiles are used for small sets such as run medians.
 */

/** Nearest-rank percentile of an ascending array; NaN when empty. */
export function percentileSorted(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  const i = Math.min(sorted.length - 1, Math.max(0, rank - 1))
  return sorted[i] ?? Number.NaN
}

export function percentile(values: readonly number[], p: number): number {
  return percentileSorted(
    [...values].sort((a, b) => a - b),
    p,
  )
}

export function median(values: readonly number[]): number {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b)
  if (s.length === 0) return Number.NaN
  const mid = s.length >> 1
  return s.length % 2 === 1 ? (s[mid] ?? Number.NaN) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2
}

const GROWTH = 1.01
const LOG_GROWTH = Math.log(GROWTH)
/** 1 µs … ~90 s at 1 % steps. */
const BUCKETS = 1900

export type SparseHistogram = Array<[bucket: number, count: number]>

/** Log-bucketed histogram of microsecond values; percentiles are within 1 % of exact. */
export class Histogram {
  private readonly counts = new Float64Array(BUCKETS)
  private n = 0
  private maxSeen = 0

  get count(): number {
    return this.n
  }

  record(us: number): void {
    const v = us < 1 ? 1 : us
    const b = Math.min(BUCKETS - 1, Math.floor(Math.log(v) / LOG_GROWTH))
    this.counts[b] = (this.counts[b] ?? 0) + 1
    this.n++
    if (v > this.maxSeen) this.maxSeen = v
  }

  reset(): void {
    this.counts.fill(0)
    this.n = 0
    this.maxSeen = 0
  }

  /** Value at percentile p (0–100), reported as the bucket's geometric midpoint; NaN when empty. */
  percentile(p: number): number {
    if (this.n === 0) return Number.NaN
    const target = Math.max(1, Math.ceil((p / 100) * this.n))
    let seen = 0
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.counts[b] ?? 0
      if (seen >= target) return Math.min(this.maxSeen, Math.pow(GROWTH, b + 0.5))
    }
    return this.maxSeen
  }

  toSparse(): { buckets: SparseHistogram; max: number } {
    const buckets: SparseHistogram = []
    for (let b = 0; b < BUCKETS; b++) {
      const c = this.counts[b] ?? 0
      if (c > 0) buckets.push([b, c])
    }
    return { buckets, max: this.maxSeen }
  }

  merge(s: { buckets: SparseHistogram; max: number }): void {
    for (const [b, c] of s.buckets) {
      if (b < 0 || b >= BUCKETS) continue
      this.counts[b] = (this.counts[b] ?? 0) + c
      this.n += c
    }
    if (s.max > this.maxSeen) this.maxSeen = s.max
  }
}
