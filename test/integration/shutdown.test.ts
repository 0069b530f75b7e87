/**
 * Shutdown of a real `switchboard serve` process whatever the state of its output (issue 15): the reader of
 * its stdout/stderr has gone, the reader stalls with the pipe full, a shutdown step cannot finish. One
 * SIGTERM must end the process within a few seconds; what the log could not take is dropped and counted
 * (switchboard_log_lines_dropped_total), and the loss is said once logging works again.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, watch } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { spawnServer, type SpawnedServer } from '../../scripts/spawn-server.js'
import { SwitchboardClient } from '../../src/client/index.js'
import { NativeClient } from '../helpers/native-client.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'sb-shutdown-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Resolves with the exit code and signal, or rejects if the process is still running after `ms`. */
function exitWithin(child: ChildProcess, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode })
      return
    }
    const timer = setTimeout(() => reject(new Error(`pid ${child.pid} still running ${ms} ms after SIGTERM`)), ms)
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal })
    })
  })
}

/** Kill what a failed test leaves behind. */
function reap(t: TestContext, child: ChildProcess): void {
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
}

/** Start a server and also learn its HTTP port (printed on the line after the native one). */
async function serveWithHttp(t: TestContext, args: string[]): Promise<SpawnedServer & { httpPort: number }> {
  let out = ''
  let onHttp: (port: number) => void = () => {}
  const http = new Promise<number>((resolve) => (onHttp = resolve))
  const s = await spawnServer(['--data-dir', tempDir(t), '--port', '0', '--http-port', '0', ...args], {
    onStdout: (d) => {
      out += d.toString()
      const m = /http\s+listening on http:\/\/[^\s:]+:(\d+)/.exec(out)
      if (m !== null) onHttp(Number(m[1]))
    },
  })
  reap(t, s.child)
  return { ...s, httpPort: await http }
}

async function droppedLines(httpPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text()
  const m = /^switchboard_log_lines_dropped_total (\d+)/m.exec(text)
  assert.ok(m !== null, 'switchboard_log_lines_dropped_total is on /metrics')
  return Number(m[1])
}

test('the reader of stdout and stderr has gone: one SIGTERM ends the server (issue 15, first reproduction)', async (t) => {
  const s = await spawnServer([
    '--data-dir',
    tempDir(t),
    '--port',
    '0',
    '--http-port',
    '-1',
    '--ack-timeout',
    '500',
    '--log-format',
    'json',
  ])
  reap(t, s.child)
  const alice = await SwitchboardClient.connect({ port: s.port, name: 'alice', reconnect: false })
  const bob = await SwitchboardClient.connect({ port: s.port, name: 'bob', reconnect: false })
  await bob.send('alice', 'hi')
  // The program that read the server's output goes away: the pipes' read ends close.
  s.child.stdout!.destroy()
  s.child.stderr!.destroy()
  await Promise.all([alice.close(), bob.close()])
  s.child.kill('SIGTERM')
  const { code, signal } = await exitWithin(s.child, 5000)
  assert.equal(signal, null)
  assert.equal(code, 0)
})

/** These tests log by registering thousands of users from one address, 100 at a time: above the default login rate and per-address caps. */
const MANY_LOGINS = ['--auth-rate', '1000000', '--max-unauthenticated-per-address', '1000']

test('a reader that never reads while the server logs a lot: it keeps serving, counts the drops, and stops on SIGTERM', async (t) => {
  let err = ''
  const s = await serveWithHttp(t, ['--log-format', 'json', '--log-level', 'debug', ...MANY_LOGINS])
  // Stop reading stderr (the log): the pipe fills, then the server's own buffer.
  s.child.stderr!.pause()
  const listener = (d: Buffer): void => {
    err += d.toString()
  }
  const receiver = await NativeClient.connect(s.port, t)
  await receiver.register('receiver')
  // Every registration logs ("registered", "session started", "session ended"). Log until lines are dropped.
  let n = 0
  while ((await droppedLines(s.httpPort)) === 0) {
    assert.ok(n < 20_000, 'no log line was dropped after 20000 registrations')
    await Promise.all(
      Array.from({ length: 100 }, async () => {
        const c = await NativeClient.connect(s.port, t)
        await c.register(`u${n++}`)
        c.destroy()
      }),
    )
  }
  // Still serving, while the log is stalled.
  const sender = await NativeClient.connect(s.port, t)
  await sender.register('sender')
  const accepted = await sender.say({ kind: 'name', name: 'receiver' }, 'still here')
  assert.equal(accepted.type, 'ACCEPTED')
  const pushed = await receiver.next('DELIVER')
  assert.equal(pushed.type === 'DELIVER' && pushed.msg.body.toString(), 'still here')

  // The reader comes back: the backlog drains, and a line written after it says what was lost, once.
  const stderr = s.child.stderr!
  stderr.on('data', listener)
  stderr.resume()
  while (!/log line\(s\) were dropped/.test(err)) {
    const more = once(stderr, 'data')
    const c = await NativeClient.connect(s.port, t)
    await c.register(`late${n++}`)
    c.destroy()
    await more
  }
  assert.equal(err.match(/log line\(s\) were dropped/g)?.length, 1, 'the loss is said once')
  const notice = JSON.parse(err.split('\n').find((l) => l.includes('were dropped'))!) as { dropped: number }
  assert.ok(notice.dropped > 0)

  s.child.kill('SIGTERM')
  const { code } = await exitWithin(s.child, 5000)
  assert.equal(code, 0)
  assert.match(err, /"msg":"stopped"/)
})

test('a stalled reader at the moment of SIGTERM does not hold the shutdown', async (t) => {
  const s = await serveWithHttp(t, ['--log-format', 'json', '--log-level', 'debug', ...MANY_LOGINS])
  s.child.stderr!.pause()
  let n = 0
  while ((await droppedLines(s.httpPort)) === 0) {
    assert.ok(n < 20_000, 'no log line was dropped after 20000 registrations')
    await Promise.all(
      Array.from({ length: 100 }, async () => {
        const c = await NativeClient.connect(s.port, t)
        await c.register(`u${n++}`)
        c.destroy()
      }),
    )
  }
  s.child.kill('SIGTERM')
  const { code } = await exitWithin(s.child, 5000)
  assert.equal(code, 0)
})

test('a shutdown step that cannot finish is abandoned after --shutdown-timeout, named, and the exit code is 1', async (t) => {
  let err = ''
  const s = await spawnServer(
    [
      ...['--data-dir', tempDir(t), '--port', '0', '--http-port', '-1', '--log-format', 'json'],
      ...['--shutdown-timeout', '500', '--max-session-buffer', String(256 * 1024 * 1024)],
    ],
    { onStderr: (d) => (err += d.toString()) },
  )
  reap(t, s.child)
  // A client that stops reading, with megabytes on their way to it: its socket cannot drain, so the native
  // gateway cannot finish closing (the adapter itself would cut it only after 5 s).
  const stuck = await NativeClient.connect(s.port, t)
  await stuck.register('stuck')
  stuck.pause()
  const sender = await NativeClient.connect(s.port, t)
  await sender.register('sender')
  const chunk = Buffer.alloc(60 * 1024, 'x')
  for (let i = 0; i < 400; i++) assert.equal((await sender.say({ kind: 'name', name: 'stuck' }, chunk)).type, 'ACCEPTED')
  sender.destroy()

  const started = Date.now()
  s.child.kill('SIGTERM')
  const { code } = await exitWithin(s.child, 4000)
  assert.equal(code, 1)
  assert.ok(Date.now() - started < 4000)
  const line = err.split('\n').find((l) => l.includes('shutdown incomplete'))
  assert.ok(line !== undefined, `the log says the shutdown was incomplete:\n${err}`)
  const rec = JSON.parse(line) as { steps: { name: string; status: string }[] }
  assert.deepEqual(
    rec.steps.map((x) => [x.name, x.status]),
    [['close the native gateway (its connections to end)', 'abandoned']],
  )
})

const SENDS = [
  { signal: 'SIGTERM', group: false, what: 'SIGTERM to `npm start`' },
  { signal: 'SIGINT', group: false, what: 'SIGINT to `npm start`' },
  { signal: 'SIGINT', group: true, what: "Ctrl-C (SIGINT to npm start's process group, so the server gets it twice)" },
] as const

for (const { signal, group, what } of SENDS) {
  test(`${what} stops the server gracefully (issue 15's second reproduction, issue 14 item 5)`, async (t) => {
    const dir = tempDir(t)
    const logFile = join(dir, 'start.log')
    const out = openSync(logFile, 'w')
    t.after(() => closeSync(out))
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SWITCHBOARD_')))
    // As a person or a supervisor does: `npm start > start.log 2>&1 &`, then a signal to npm's pid.
    const npm = spawn('npm', ['start'], {
      cwd: ROOT,
      env: { ...env, SWITCHBOARD_PORT: '0', SWITCHBOARD_HTTP_PORT: '0', SWITCHBOARD_DATA_DIR: join(dir, 'data') },
      stdio: ['ignore', out, out],
      // A process group of its own, as a terminal gives a foreground job.
      detached: group,
    })
    reap(t, npm)
    const npmExited = exitWithin(npm, 600_000)
    // prestart may build first (dist/ and web/dist/ missing or stale): wait for the server's first log line.
    const started = await new Promise<{ pid: number }>((resolve, reject) => {
      const watcher = watch(logFile)
      const check = (): void => {
        const line = readFileSync(logFile, 'utf8')
          .split('\n')
          .find((l) => l.includes('"msg":"switchboard started"'))
        if (line === undefined) return
        watcher.close()
        resolve(JSON.parse(line) as { pid: number })
      }
      watcher.on('change', check)
      void npmExited.then(() => {
        watcher.close()
        reject(new Error(`npm start exited before the server started:\n${readFileSync(logFile, 'utf8')}`))
      })
      check()
    })
    t.after(() => {
      if (alive(started.pid)) process.kill(started.pid, 'SIGKILL')
    })
    assert.notEqual(started.pid, npm.pid, 'the server is a process of its own')
    if (group) process.kill(-npm.pid!, signal)
    else npm.kill(signal)
    // npm forwards the signal to its script and exits when the script has: the server, exec'd by the script's shell.
    await exitWithin(npm, 10_000)
    const log = readFileSync(logFile, 'utf8')
    assert.match(log, new RegExp(`"signal":"${signal}","msg":"shutting down`))
    assert.match(log, /"msg":"stopped"/)
    assert.doesNotMatch(log, /second signal/)
    assert.equal(alive(started.pid), false, `the server (pid ${started.pid}) has exited`)
  })
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
