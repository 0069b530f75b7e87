/**
 * Start `switchboard serve` as a child process and learn its native port from the line it prints
 * ("native … listening on host:port"). One helper for the tests and the benchmark targets that need a real
 * server process (to kill it, to measure it, or to run several).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { SEMI_SPACE_OPTION } from '../src/cli/young-generation.js'

// SWITCHBOARD_SERVER_ROOT runs another checkout's server (the bench compares commits with one harness).
const ROOT = process.env.SWITCHBOARD_SERVER_ROOT ?? fileURLToPath(new URL('..', import.meta.url))
const LISTENING = /native\S*\s+listening on [^\s:]+:(\d+)/
const KEEP = 64 * 1024

let help: string | undefined

/** Whether the server under ROOT lists `flag` in `serve --help` (an older checkout lacks later options). */
export function serverKnowsOption(flag: string): boolean {
  help ??= spawnSync(process.execPath, ['bin/switchboard.js', 'serve', '--help'], { cwd: ROOT, encoding: 'utf8' }).stdout
  return new RegExp(`(^|\\s)${flag.replace(/[-]/g, '\\-')}(?![\\w-])`, 'm').test(help)
}

export interface SpawnedServer {
  child: ChildProcess
  /** The native protocol's port. */
  port: number
  /** Resolves when the process has exited. */
  exited: Promise<void>
}

export interface SpawnOptions {
  /** What to call the process in errors (default "switchboard"). */
  label?: string
  timeoutMs?: number
  /** Every chunk of the child's output, for logs of its own (the start error quotes the first 64 KiB anyway). */
  onStdout?: (chunk: Buffer) => void
  onStderr?: (chunk: Buffer) => void
  /** Options for node itself, before the script (e.g. `--import` of a preload). */
  nodeArgs?: readonly string[]
  /** The child's environment (default: this process's). */
  env?: NodeJS.ProcessEnv
  /** A command that runs node, e.g. `['prlimit', '--nofile=256', '--']` for a lower descriptor limit. */
  wrapper?: readonly string[]
}

/** `args` follow `switchboard serve`. Rejects if the server exits, or does not listen within the timeout. */
export function spawnServer(args: readonly string[], opts: SpawnOptions = {}): Promise<SpawnedServer> {
  const label = opts.label ?? 'switchboard'
  const timeoutMs = opts.timeoutMs ?? 60_000
  return new Promise((resolve, reject) => {
    // SWITCHBOARD_NODE_ARGS adds options for node (e.g. `--cpu-prof --cpu-prof-dir=prof` to profile a bench's server).
    const extra = process.env.SWITCHBOARD_NODE_ARGS?.split(' ').filter((a) => a !== '') ?? []
    // The young generation npm start and the switchboard command give the server (src/cli/young-generation.ts).
    const semi = extra.some((a) => a.startsWith('--max-semi-space-size')) ? [] : [SEMI_SPACE_OPTION]
    const argv = [process.execPath, ...semi, ...extra, ...(opts.nodeArgs ?? []), 'bin/switchboard.js', 'serve', ...args]
    const [cmd, ...rest] = [...(opts.wrapper ?? []), ...argv]
    const child = spawn(cmd!, rest, {
      cwd: ROOT,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const exited = new Promise<void>((r) => child.once('exit', () => r()))
    let out = ''
    let err = ''
    let port = 0
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${label}: no listening line within ${timeoutMs} ms\n${out}\n${err}`))
    }, timeoutMs)
    child.stdout!.on('data', (d: Buffer) => {
      opts.onStdout?.(d)
      if (port !== 0 || out.length > KEEP) return
      out += d.toString()
      const m = LISTENING.exec(out)
      if (m !== null) {
        clearTimeout(timer)
        port = Number(m[1])
        resolve({ child, port, exited })
      }
    })
    child.stderr!.on('data', (d: Buffer) => {
      opts.onStderr?.(d)
      if (err.length < KEEP) err += d.toString()
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      if (port === 0)
        reject(new Error(`${label} exited before listening (code ${String(code)}, ${String(signal)})\n${out}\n${err}`))
    })
  })
}
