/** Types shared by the scenarios' coordinator halves. */
import os from 'node:os'
import type { BenchTarget } from '../targets/target.js'

export interface ScenarioContext {
  /** Registry name, e.g. `mosquitto`; the started target (its params() are what workers get). */
  targetName: string
  target: BenchTarget
  /** Number of load-generator worker processes. */
  workers: number
  warmupMs: number
  durationMs: number
  /** Peak direct 16 B rate (acked msgs/s) measured earlier in this run for this target, if any. */
  peakDirectRate?: number
  log: (line: string) => void
}

export interface Metric {
  scenario: string
  name: string
  unit: string
  better: 'higher' | 'lower'
  value: number
}

export interface ScenarioOutcome {
  metrics: Metric[]
  /** Honest remarks: generator-bound, machine saturated, connection limits, losses. */
  notes: string[]
  /** Extra numbers kept in the JSON only (CPU %, error counts, …). */
  detail: Record<string, unknown>
}

/** Generator CPU at or above this share of one core means it, not the server, may be the limit. */
export const GENERATOR_BOUND_PCT = 90

export function cpuNotes(
  label: string,
  generatorCpuPct: number[],
  serverCpuPct: number | undefined,
  machineBusyPct: number,
): string[] {
  const notes: string[] = []
  const hot = generatorCpuPct.filter((p) => p >= GENERATOR_BOUND_PCT)
  if (hot.length > 0) {
    notes.push(
      `${label}: generator-bound? ${hot.length}/${generatorCpuPct.length} generator processes at ≥${GENERATOR_BOUND_PCT}% CPU (${generatorCpuPct.map((p) => p.toFixed(0)).join('/')}%)`,
    )
  }
  // Machine busy % is of all cores; convert to "% of one core" to compare with per-process numbers.
  const otherPct = machineBusyPct * os.availableParallelism() - (serverCpuPct ?? 0) - generatorCpuPct.reduce((a, b) => a + b, 0)
  if (serverCpuPct !== undefined && otherPct > 25) {
    notes.push(
      `${label}: other processes used ~${otherPct.toFixed(0)}% of a core during the window (shared machine): expect noise`,
    )
  }
  if (machineBusyPct >= 95) {
    notes.push(
      `${label}: machine CPU ${machineBusyPct.toFixed(0)}% busy (server ${serverCpuPct === undefined ? '?' : serverCpuPct.toFixed(0)}%): server and generator share the cores`,
    )
  }
  return notes
}
