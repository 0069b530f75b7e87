/** Readings from /proc (Linux only) and run metadata for tagging results. */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import os from 'node:os'

function readOr(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
}

/** Resident set size in KiB from /proc/<pid>/status. */
export function rssKiB(pid: number): number | undefined {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readOr(`/proc/${pid}/status`) ?? '')
  return m?.[1] === undefined ? undefined : Number(m[1])
}

/** Peak resident set size (VmHWM) in KiB: how large the process has ever been. */
export function hwmKiB(pid: number): number | undefined {
  const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readOr(`/proc/${pid}/status`) ?? '')
  return m?.[1] === undefined ? undefined : Number(m[1])
}

/** Soft "Max open files" limit of a process; undefined if unreadable (e.g. not our process and no permission). */
export function maxOpenFiles(pid: number | 'self'): number | undefined {
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(readOr(`/proc/${pid}/limits`) ?? '')
  if (m?.[1] === undefined) return undefined
  return m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1])
}

const CLK_TCK = 100 // sysconf(_SC_CLK_TCK) is 100 on every Linux we run on

/** utime+stime of a process in milliseconds. */
export function cpuMs(pid: number): number | undefined {
  const stat = readOr(`/proc/${pid}/stat`)
  if (stat === undefined) return undefined
  // Field 2 (comm) may contain spaces; everything after the last ')' is space-separated.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const utime = Number(rest[11])
  const stime = Number(rest[12])
  return ((utime + stime) * 1000) / CLK_TCK
}

/** Machine-wide busy/total jiffies from /proc/stat, to tell whether the whole box was saturated. */
export function machineJiffies(): { busy: number; total: number } {
  const line = (readOr('/proc/stat') ?? '').split('\n')[0] ?? ''
  const v = line.trim().split(/\s+/).slice(1).map(Number)
  const total = v.reduce((a, b) => a + b, 0)
  const idle = (v[3] ?? 0) + (v[4] ?? 0)
  return { busy: total - idle, total }
}

/** Samples a server process and the machine over a window; call `end()` to get CPU % (100 = one core). */
export function cpuWindow(pid: number | undefined): { end(): { serverCpuPct?: number; machineBusyPct: number } } {
  const t0 = performance.now()
  const s0 = pid === undefined ? undefined : cpuMs(pid)
  const m0 = machineJiffies()
  return {
    end() {
      const wall = performance.now() - t0
      const s1 = pid === undefined ? undefined : cpuMs(pid)
      const m1 = machineJiffies()
      const out: { serverCpuPct?: number; machineBusyPct: number } = {
        machineBusyPct: round1((100 * (m1.busy - m0.busy)) / Math.max(1, m1.total - m0.total)),
      }
      if (s0 !== undefined && s1 !== undefined && wall > 0) out.serverCpuPct = round1((100 * (s1 - s0)) / wall)
      return out
    },
  }
}

export function round1(x: number): number {
  return Math.round(x * 10) / 10
}

/** First pid whose exact process name is `name` (pgrep -x), if any. */
export function pgrep(name: string): number | undefined {
  try {
    const out = execFileSync('pgrep', ['-x', name], { encoding: 'utf8' }).trim().split('\n')[0]
    return out ? Number(out) : undefined
  } catch {
    return undefined
  }
}

export function machineInfo(): { cpuModel: string; nproc: number; memTotalMiB: number; kernel: string } {
  const cpu = /^model name\s*:\s*(.+)$/m.exec(readOr('/proc/cpuinfo') ?? '')?.[1] ?? os.cpus()[0]?.model ?? 'unknown'
  return {
    cpuModel: cpu.trim(),
    nproc: os.availableParallelism(),
    memTotalMiB: Math.round(os.totalmem() / 1048576),
    kernel: os.release(),
  }
}

export function gitSha(cwd: string): string {
  try {
    const sha = execFileSync('git', ['rev-parse', 'HEAD'], { cwd, encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'bench'], { cwd, encoding: 'utf8' }).trim()
    return dirty ? `${sha}+dirty-bench` : sha
  } catch {
    return 'unknown'
  }
}
