/**
 * `npm run fuzz -- --self-test`: does the harness still find what it is there to find? The harness was made
 * fast (no stacks while the loop runs, slow inputs timed per batch, a cheap deep equality and outcome class), so
 * this checks each of those against what it replaced, then runs every codec target with four planted inputs
 * (canaries) and checks that each is found and saved:
 *
 * - a crash (an Error thrown after the target ran): a crash file whose .txt has the full stack;
 * - a broken invariant (`assertSame` on two different frames): a crash file naming the assertion;
 * - a slow input (busy for twice --slow-ms, every time it runs): a slow file;
 * - a hang (an endless loop): the main thread's watchdog saves it from shared memory as a hang file, with the
 *   canary's bytes, and the worker restarts past it.
 */
import { isDeepStrictEqual } from 'node:util'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { sameValue, assertSame } from './equal.js'
import { BYTES, Corpus, Mutator, Rng, shape, shapeByRegex, U16, U32 } from './mutate.js'
import { targets, type Target } from './targets.js'

export const CANARY = {
  crash: Buffer.from('switchboard fuzz self-test: crash'),
  invariant: Buffer.from('switchboard fuzz self-test: invariant'),
  slow: Buffer.from('switchboard fuzz self-test: slow'),
  hang: Buffer.from('switchboard fuzz self-test: hang'),
}
/** Where each canary goes in the worker's first round (all within --inputs 5000). */
const AT = new Map<number, Buffer>([
  [1001, CANARY.crash],
  [1502, CANARY.invariant],
  [2003, CANARY.slow],
  [3004, CANARY.hang],
])

export interface Canaries {
  at(i: number): Buffer | undefined
  run(input: Buffer): string
}

/** The target with the canaries planted: each runs through the target first, like any input. */
export function canaries(t: Target, slowMs: number): Canaries {
  return {
    at: (i) => AT.get(i),
    run(input) {
      const sig = t.run(input)
      if (input === CANARY.crash) plantedCrash()
      if (input === CANARY.invariant) assertSame({ type: 'PING', corr: 1 }, { type: 'PING', corr: 2 }, 'self-test invariant')
      if (input === CANARY.slow) {
        const until = performance.now() + 2 * slowMs
        while (performance.now() < until);
      }
      if (input === CANARY.hang) for (;;);
      return sig
    },
  }
}

function plantedCrash(): never {
  throw new Error('self-test crash')
}

/** The cheap forms against what they replaced; returns what disagrees. */
export function checkCheapForms(): string[] {
  const bad: string[] = []
  // the in-place Mutator makes what the Buffer.concat one made, from each target's seeds and corpus growth
  for (const t of targets) {
    const dict = t.dict.map((d) => Buffer.from(d, 'latin1'))
    const [r1, r2] = [new Rng(11), new Rng(11)]
    const [m1, m2] = [new Mutator(r1, t.maxLen, dict), new MutatorByConcat(r2, t.maxLen, dict)]
    const corpus = new Corpus(new Rng(12))
    for (const s of t.seeds()) corpus.add(s)
    for (let i = 0; i < 20_000; i++) {
      const [base, other] = [corpus.pick(), corpus.pick()]
      const x = m1.mutate(base, other)
      const y = m2.mutate(base, other)
      if (!x.equals(y)) {
        bad.push(`${t.name}: the Mutator made ${x.toString('hex')}, the reference ${y.toString('hex')}`)
        break
      }
      if (i % 8 === 0) corpus.add(x)
    }
  }
  // shape: the one-pass form gives what the regexes give
  const details = fc.sample(
    fc.oneof(
      fc.string({ unit: fc.constantFrom('a', ' ', '"', '0', '9', '7', ':', '…', 'é', '\ud800'), maxLength: 200 }),
      fc.string({ maxLength: 300 }),
    ),
    { seed: 1, numRuns: 100_000 },
  )
  details.push('field runs past the end of the frame at byte 12', 'unknown kind "12a" at 3 of "', '"'.repeat(300))
  for (const d of details) if (shape(d) !== shapeByRegex(d)) bad.push(`shape(${JSON.stringify(d)})`)
  // sameValue: true only where deepStrictEqual is true. The same seed twice gives equal values that are not
  // the same objects (the fast path's own case); seeds side by side give different ones.
  const arb = fc.anything({
    withBoxedValues: true,
    withMap: true,
    withSet: true,
    withObjectString: true,
    withNullPrototype: true,
    withBigInt: true,
    withDate: true,
    withTypedArray: true,
    withSparseArray: true,
  })
  const values = (seed: number) => fc.sample(arb, { seed, numRuns: 10_000 })
  const a = values(7)
  const same = values(7)
  const other = values(8)
  // what decoders return: JSON-like values with Buffers in them, where sameValue should decide by itself
  const frameLike = (seed: number) =>
    fc.sample(
      fc.letrec((tie) => ({
        v: fc.oneof(
          { depthSize: 'small' },
          fc.jsonValue({ maxDepth: 1 }),
          fc.uint8Array({ maxLength: 8 }).map((u) => Buffer.from(u)),
          fc.array(tie('v'), { maxLength: 3 }),
          fc.dictionary(fc.string({ maxLength: 4 }), tie('v'), { maxKeys: 4 }),
        ),
      })).v,
      { seed, numRuns: 10_000 },
    )
  const f = frameLike(1)
  const fSame = frameLike(1)
  const fOther = frameLike(2)
  const pairs: [unknown, unknown][] = [
    ...a.map((x, i): [unknown, unknown] => [x, same[i]]),
    ...a.map((x, i): [unknown, unknown] => [x, other[i]]),
    ...f.map((x, i): [unknown, unknown] => [x, fOther[i]]),
    [0, -0],
    [NaN, NaN],
    [
      [1, , 3],
      [1, undefined, 3],
    ],
    [{ a: undefined }, { b: undefined }],
    [Buffer.from('ab'), new Uint8Array([97, 98])],
  ]
  const framePairs = f.map((x, i): [unknown, unknown] => [x, fSame[i]])
  let fast = 0
  for (const [x, y] of framePairs) if (sameValue(x, y)) fast++
  if (fast !== framePairs.length) bad.push(`sameValue decided only ${fast} of ${framePairs.length} equal frame-like pairs itself`)
  for (const [x, y] of [...pairs, ...framePairs]) {
    const deep = isDeepStrictEqual(x, y)
    if (sameValue(x, y) && !deep) bad.push(`sameValue(${String(x)}, ${String(y)}) is true, deepStrictEqual false`)
    // and assertSame throws exactly when deepStrictEqual is false
    let threw = false
    try {
      assertSame(x, y)
    } catch {
      threw = true
    }
    if (threw === deep) bad.push(`assertSame(${String(x)}, ${String(y)}) disagrees with deepStrictEqual`)
  }
  return bad
}

const id = (b: Buffer) => createHash('sha1').update(b).digest('hex').slice(0, 16)

/** After a canary run of one target: what is missing from its findings. */
export function checkFindings(
  dir: string,
  target: string,
  r: { inputs: number; crashes: number; hangs: number; slow: number },
  inputs: number,
): string[] {
  const bad: string[] = []
  const sub = join(dir, target)
  const txt = (kind: string, b: Buffer) => {
    const f = join(sub, `${kind}-${id(b)}.txt`)
    return existsSync(f) ? readFileSync(f, 'utf8') : undefined
  }
  const crash = txt('crash', CANARY.crash)
  if (crash === undefined) bad.push('the planted crash was not saved')
  else if (!/self-test crash\n\s+at plantedCrash .*self-test\.ts/.test(crash))
    bad.push(`the planted crash has no stack: ${crash}`)
  const inv = txt('crash', CANARY.invariant)
  if (inv === undefined || !inv.includes('self-test invariant')) bad.push('the broken invariant was not saved')
  if (txt('slow', CANARY.slow) === undefined) bad.push('the slow input was not saved')
  const hang = join(sub, `hang-${id(CANARY.hang)}.bin`)
  if (!existsSync(hang) || !readFileSync(hang).equals(CANARY.hang)) bad.push('the hang was not saved with its bytes')
  if (r.crashes !== 2) bad.push(`${r.crashes} crashes counted, not 2`)
  if (r.slow !== 1) bad.push(`${r.slow} slow inputs counted, not 1`)
  if (r.hangs !== 1) bad.push(`${r.hangs} hangs counted, not 1`)
  if (r.inputs !== inputs) bad.push(`${r.inputs} inputs counted, not ${inputs}`)
  return bad.map((b) => `${target}: ${b}`)
}

/** The Mutator of fuzz/mutate.ts as it was, one Buffer.concat per mutation: the reference for the in-place one. */
class MutatorByConcat {
  constructor(
    private readonly rng: Rng,
    private readonly maxLen: number,
    private readonly dict: readonly Buffer[],
  ) {}

  mutate(base: Buffer, other: Buffer): Buffer {
    let b: Buffer = Buffer.from(base)
    const n = 1 + (this.rng.chance(2) ? 0 : this.rng.int(8))
    for (let i = 0; i < n; i++) b = this.once(b, other)
    return b.length > this.maxLen ? b.subarray(0, this.maxLen) : b
  }

  private once(b: Buffer, other: Buffer): Buffer {
    const r = this.rng
    const len = b.length
    switch (r.int(13)) {
      case 0:
        if (len > 0) b[r.int(len)]! ^= 1 << r.int(8)
        return b
      case 1:
        if (len > 0) b[r.int(len)] = r.int(256)
        return b
      case 2:
        if (len > 0) b[r.int(len)] = r.pick(BYTES)
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
        const o = r.int(len)
        const n = 1 + r.int(Math.min(16, len - o))
        return Buffer.concat([b.subarray(0, o), b.subarray(o + n)])
      }
      case 7: {
        if (len === 0) return b
        const o = r.int(len)
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
        return len === 0 ? b : b.subarray(0, r.int(len))
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
          const o = r.int(len)
          b[o] = (b[o]! + (r.chance(2) ? 1 : -1) * (1 + r.int(35))) & 0xff
        }
        return b
      default:
        // the whole input twice (coalesced frames), or the other entry appended
        return r.chance(2) ? Buffer.concat([b, b]) : Buffer.concat([b, other])
    }
  }
}
