/**
 * A set of acknowledged seqs in one log, kept small whatever the order of the acknowledgements: every seq up
 * to `floor`, and the inclusive ranges above it. A device's cursor is one (what it has acknowledged), and so is
 * a user's (what some device has acknowledged, or needs no acknowledgement: sent copies, expired messages).
 * Acknowledgements come nearly in order, so `above` holds a range or two; it is stored as text ("5-7,9").
 * Pure: no I/O.
 */

export interface AckSet {
  /** Every seq <= floor is in the set (0: none). */
  floor: number
  /** Inclusive [lo, hi] ranges above floor + 1, ascending, neither touching the floor nor each other. */
  above: [number, number][]
}

export function emptyAcks(floor = 0): AckSet {
  return { floor, above: [] }
}

export function copyAcks(a: AckSet): AckSet {
  return { floor: a.floor, above: a.above.map(([lo, hi]) => [lo, hi]) }
}

export function hasAck(a: AckSet, seq: number): boolean {
  if (seq <= a.floor) return true
  for (const [lo, hi] of a.above) {
    if (seq < lo) return false
    if (seq <= hi) return true
  }
  return false
}

/** Add `seq` to the set in place. Returns false when it was there already. */
export function addAck(a: AckSet, seq: number): boolean {
  if (hasAck(a, seq)) return false
  const r = a.above
  let i = 0
  while (i < r.length && r[i]![1] < seq) i++
  // Insert [seq, seq] before r[i], then merge with its neighbours.
  r.splice(i, 0, [seq, seq])
  if (i + 1 < r.length && r[i + 1]![0] === seq + 1) {
    r[i]![1] = r[i + 1]![1]
    r.splice(i + 1, 1)
  }
  if (i > 0 && r[i - 1]![1] === seq - 1) {
    r[i - 1]![1] = r[i]![1]
    r.splice(i, 1)
  }
  while (r.length > 0 && r[0]![0] === a.floor + 1) {
    a.floor = r[0]![1]
    r.shift()
  }
  return true
}

/** Raise the floor to at least `floor` (everything up to it is in the set from now on). */
export function raiseFloor(a: AckSet, floor: number): void {
  if (floor <= a.floor) return
  a.floor = floor
  while (a.above.length > 0 && a.above[0]![0] <= a.floor + 1) {
    a.floor = Math.max(a.floor, a.above[0]![1])
    a.above.shift()
  }
}

/** How many seqs in (from, to] the set holds. */
export function countAcks(a: AckSet, from: number, to: number): number {
  let n = Math.max(0, Math.min(a.floor, to) - from)
  for (const [lo, hi] of a.above) n += Math.max(0, Math.min(hi, to) - Math.max(lo - 1, from))
  return n
}

/** "5-7,9" — the ranges above the floor as stored in a column; '' when there are none. */
export function encodeAbove(above: readonly [number, number][]): string {
  return above.map(([lo, hi]) => (lo === hi ? String(lo) : `${lo}-${hi}`)).join(',')
}

export function decodeAbove(text: string | null | undefined): [number, number][] {
  if (text === null || text === undefined || text === '') return []
  return text.split(',').map((part) => {
    const dash = part.indexOf('-')
    const lo = Number(dash < 0 ? part : part.slice(0, dash))
    const hi = dash < 0 ? lo : Number(part.slice(dash + 1))
    return [lo, hi] as [number, number]
  })
}

export function sameAcks(a: AckSet, b: AckSet): boolean {
  return a.floor === b.floor && encodeAbove(a.above) === encodeAbove(b.above)
}
