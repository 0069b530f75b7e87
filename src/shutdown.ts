/**
 * Bounded shutdown: named steps run one after another, each given at most its time. A step that has not
 * finished by then (a store flush that hangs, a socket that will not drain) is abandoned: the runner moves
 * on to the next step and the outcome says which step it left, so the process can exit non-zero instead
 * of waiting forever. An abandoned step is not cancelled (a promise cannot be); it is no longer waited for.
 */

export interface ShutdownStep {
  name: string
  run(): Promise<unknown> | void
  /** This step's budget in ms (the runner's default otherwise). */
  timeoutMs?: number
}

export interface StepOutcome {
  name: string
  status: 'done' | 'failed' | 'abandoned'
  ms: number
  error?: unknown
}

export interface ShutdownReport {
  ok: boolean
  steps: StepOutcome[]
}

/** Thrown by a close() whose steps did not all finish: the report says which ones did not. */
export class ShutdownIncomplete extends Error {
  constructor(readonly report: ShutdownReport) {
    const bad = report.steps.filter((s) => s.status !== 'done')
    super(`shutdown incomplete: ${bad.map((s) => `${s.name} (${s.status} after ${s.ms} ms)`).join(', ')}`)
    this.name = 'ShutdownIncomplete'
  }

  /** The steps that were given up on or failed. */
  get unfinished(): StepOutcome[] {
    return this.report.steps.filter((s) => s.status !== 'done')
  }
}

export async function runSteps(
  steps: readonly ShutdownStep[],
  opts: { timeoutMs: number; onStep?: (o: StepOutcome) => void },
): Promise<ShutdownReport> {
  const outcomes: StepOutcome[] = []
  for (const step of steps) {
    const started = Date.now()
    const budget = step.timeoutMs ?? opts.timeoutMs
    let timer: NodeJS.Timeout | undefined
    const expired = new Promise<'abandoned'>((resolve) => {
      timer = setTimeout(() => resolve('abandoned'), budget)
    })
    const running = Promise.resolve().then(() => step.run())
    // An abandoned step that fails later must not become an unhandled rejection.
    running.catch(() => {})
    let outcome: StepOutcome
    try {
      const status = await Promise.race([running.then(() => 'done' as const), expired])
      outcome = { name: step.name, status, ms: Date.now() - started }
    } catch (error) {
      outcome = { name: step.name, status: 'failed', ms: Date.now() - started, error }
    } finally {
      clearTimeout(timer)
    }
    outcomes.push(outcome)
    opts.onStep?.(outcome)
  }
  return { ok: outcomes.every((o) => o.status === 'done'), steps: outcomes }
}
