/** Child-process helpers shared by the coordinator and the Aedes launcher. */
import type { ChildProcess } from 'node:child_process'

/** `--import <tsx>` as an absolute URL, so children resolve tsx whatever their cwd. */
export function tsxExecArgv(): string[] {
  return ['--import', import.meta.resolve('tsx')]
}

export function waitForExit(c: ChildProcess, ms: number): Promise<boolean> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve(true)
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms)
    c.once('exit', () => {
      clearTimeout(t)
      resolve(true)
    })
  })
}
