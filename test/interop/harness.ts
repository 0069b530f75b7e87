/**
 * Shared by the interop tests: toolchain checks (skip with a reason locally, fail under CI=true), building the
 * clients, a real Switchboard server on a free port, and running a client's agent program.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawnServer } from '../../scripts/spawn-server.js'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
export const CLIENTS = path.join(ROOT, 'clients')
export const IN_CI = process.env.CI === 'true'

/** The path of a program on PATH, or undefined. */
export function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(dir, cmd)
    try {
      fs.accessSync(p, fs.constants.X_OK)
      return p
    } catch {
      // not here
    }
  }
  for (const dir of ['/usr/sbin', '/sbin']) if (fs.existsSync(path.join(dir, cmd))) return path.join(dir, cmd)
  return undefined
}

/**
 * Why these tools are missing, or undefined when all are there. Under CI=true a missing tool is an error
 * (.ci/run installs them with scripts/install-toolchains.sh), so this throws instead of letting a test skip.
 */
export function missing(...tools: string[]): string | undefined {
  const gone = tools.filter((t) => which(t) === undefined)
  if (gone.length === 0) return undefined
  const reason = `${gone.join(', ')} not installed (run scripts/install-toolchains.sh)`
  if (IN_CI) throw new Error(`CI=true and ${reason}`)
  return reason
}

/** Run a command to completion; throws with its output when it fails. */
export function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, PYTHONIOENCODING: 'utf-8', PYTHONDONTWRITEBYTECODE: '1', ...opts.env },
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 300_000,
    maxBuffer: 64 * 1024 * 1024,
  })
  if (r.status !== 0) {
    const why = r.error ? String(r.error) : `exit ${r.status}${r.signal ? ` (${r.signal})` : ''}`
    throw new Error(`${cmd} ${args.join(' ')} failed: ${why}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`)
  }
  return r
}

/**
 * Run a build under a lock: the test runner runs two files at once, and both cpp.test.ts and matrix.test.ts
 * build clients/cpp (csharp likewise); the second waits, then finds everything up to date.
 */
function runLocked(name: string, cmd: string, args: string[]): void {
  if (which('flock') === undefined) run(cmd, args)
  else run('flock', [path.join(os.tmpdir(), `switchboard-build-${name}.lock`), cmd, ...args])
}

export function buildCpp(): string {
  const dir = path.join(CLIENTS, 'cpp')
  const build = path.join(dir, 'build')
  runLocked('cpp', 'sh', [
    '-c',
    `cmake -S "${dir}" -B "${build}" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null && cmake --build "${build}" -j2`,
  ])
  return build
}

export function buildCsharp(): string {
  runLocked('csharp', 'sh', [path.join(CLIENTS, 'csharp', 'build.sh')])
  return path.join(CLIENTS, 'csharp', 'build')
}

export interface Server {
  host: string
  port: number
  stop(): Promise<void>
}

/** A real server (node bin/switchboard.js) on a free port with its own data directory. */
export async function startServer(extra: string[] = []): Promise<Server> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-interop-'))
  const { child, port } = await spawnServer(
    ['--port', '0', '--http-port', '-1', '--data-dir', dir, '--log-level', 'warn', ...extra],
    { onStderr: (d) => process.stderr.write(d) },
  )
  return {
    host: '127.0.0.1',
    port,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r))
        child.kill('SIGTERM')
        await exited
      }
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** A running agent: its output lines as they come, and its end. */
export interface AgentRun {
  lines: string[]
  /** Resolves when a line matching `re` has been printed (rejects if the program ends first). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>
  done: Promise<{ code: number | null; stdout: string; stderr: string }>
  child: ChildProcess
}

export function startAgent(cmd: string, args: string[], cwd: string = ROOT): AgentRun {
  const child = spawn(cmd, args, {
    cwd,
    env: { ...process.env, PYTHONIOENCODING: 'utf-8', PYTHONDONTWRITEBYTECODE: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines: string[] = []
  let stdout = ''
  let stderr = ''
  const waiters: { re: RegExp; resolve(l: string): void }[] = []
  let ended = false
  const endWaiters: (() => void)[] = []
  child.stdout!.setEncoding('utf8')
  child.stderr!.setEncoding('utf8')
  let partial = ''
  child.stdout!.on('data', (d: string) => {
    stdout += d
    partial += d
    let i: number
    while ((i = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, i)
      partial = partial.slice(i + 1)
      lines.push(line)
      for (const w of waiters.splice(0))
        if (w.re.test(line)) w.resolve(line)
        else waiters.push(w)
    }
  })
  child.stderr!.on('data', (d: string) => (stderr += d))
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    child.once('close', (code) => {
      ended = true
      for (const w of endWaiters.splice(0)) w()
      resolve({ code, stdout, stderr })
    })
  })
  return {
    lines,
    child,
    done,
    waitFor(re, timeoutMs = 20_000) {
      const seen = lines.find((l) => re.test(l))
      if (seen !== undefined) return Promise.resolve(seen)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no line ${re} in time; got ${JSON.stringify(lines)} ${stderr}`)),
          timeoutMs,
        )
        waiters.push({
          re,
          resolve: (l) => {
            clearTimeout(timer)
            resolve(l)
          },
        })
        const onEnd = (): void => {
          clearTimeout(timer)
          reject(new Error(`ended before ${re}: ${JSON.stringify(lines)} ${stderr}`))
        }
        if (ended) onEnd()
        else endWaiters.push(onEnd)
      })
    },
  }
}

/** A client language whose agent program (clients/<lang>/…agent) the interop tests drive. */
export interface Lang {
  name: string
  /** Start the agent with these arguments (after --host/--port). */
  agent(args: string[]): AgentRun
}

/**
 * The agents of the Python, C++ and C# clients that can run here (building C++ and C# first); a language whose
 * toolchain is missing is named in `skipped` instead (under CI=true, missing() throws).
 */
export function agentLanguages(server: Server, skipped: string[]): Lang[] {
  const hp = ['--host', server.host, '--port', String(server.port)]
  const langs: Lang[] = []
  const py = missing('python3')
  if (py === undefined)
    langs.push({
      name: 'python',
      agent: (a) => startAgent('python3', ['-m', 'switchboard_client.agent', ...hp, ...a], path.join(CLIENTS, 'python')),
    })
  else skipped.push(`python: ${py}`)
  const cpp = missing('g++', 'cmake')
  if (cpp === undefined) {
    const bin = path.join(buildCpp(), 'switchboard-cpp-agent')
    langs.push({ name: 'cpp', agent: (a) => startAgent(bin, [...hp, ...a]) })
  } else skipped.push(`cpp: ${cpp}`)
  const cs = missing('mcs', 'mono')
  if (cs === undefined) {
    const exe = path.join(buildCsharp(), 'switchboard-cs-agent.exe')
    langs.push({ name: 'csharp', agent: (a) => startAgent('mono', [exe, ...hp, ...a]) })
  } else skipped.push(`csharp: ${cs}`)
  return langs
}
