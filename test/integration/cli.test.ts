/**
 * The terminal client as a person and a script use it: `switchboard send` / `switchboard inbox` exit codes
 * and output (spawned `node bin/switchboard.js`, SWITCHBOARD_HOME in a temp dir), and `switchboard chat`
 * driven through a real pseudo-terminal with tmux: log in, send, see the receipt, /who, rename, quit.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { startTestServer } from '../helpers/server.js'
import { until } from '../helpers/wait.js'
import { FileCredentialStore, SwitchboardClient, type IncomingMessage } from '../../src/client/index.js'

const ROOT = resolve(import.meta.dirname, '../..')
const BIN = join(ROOT, 'bin', 'switchboard.js')

interface Run {
  code: number
  stdout: string
  stderr: string
}

function sb(home: string, args: string[]): Promise<Run> {
  return new Promise((res) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { ...process.env, SWITCHBOARD_HOME: home }, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1
        res({ code, stdout, stderr })
      },
    )
  })
}

/** sb() with `input` on stdin (a password for --password-stdin). */
function sbIn(home: string, args: string[], input: string): Promise<Run> {
  return new Promise((res) => {
    const child = execFile(
      process.execPath,
      [BIN, ...args],
      { env: { ...process.env, SWITCHBOARD_HOME: home }, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1
        res({ code, stdout, stderr })
      },
    )
    child.stdin!.end(input)
  })
}

function home(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'sb-home-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

test('switchboard send and inbox: exit codes and output', async (t) => {
  const { port } = await startTestServer(t, { ackTimeout: 500 })
  const h = home(t)
  const p = ['--port', String(port)]

  // A name is registered only on purpose: --as alone with an unknown name is an error that says so.
  const unknown = await sb(h, ['send', '--as', 'bob', '--to', 'nobody', ...p, 'hello?'])
  assert.equal(unknown.code, 1)
  assert.match(unknown.stderr, /unknown name "bob".*--register/)
  assert.equal(existsSync(join(h, 'credentials.json')), false, 'nothing was registered')

  // --register registers bob; the unknown recipient is "not delivered", not a crash.
  const refused = await sb(h, ['send', '--as', 'bob', '--register', '--to', 'nobody', ...p, 'hello?'])
  assert.equal(refused.code, 1)
  assert.match(refused.stderr, /not delivered: no such user: nobody.*SB_ERR_UNKNOWN_RECIPIENT/)
  assert.equal(statSync(join(h, 'credentials.json')).mode & 0o777, 0o600, 'bob was registered and remembered')

  // bob is offline: stored, exit 3
  const stored = await sb(h, ['send', '--as', 'alice', '--register', '--to', 'bob', ...p, 'are', 'you', 'there?'])
  assert.equal(stored.code, 3, stored.stderr)
  assert.match(stored.stdout, /stored for bob.*\(202\)/)

  // bob online and acknowledging: delivered, exit 0
  const bob = await SwitchboardClient.connect({ port, name: 'carl' })
  t.after(() => bob.close(200))
  const got: IncomingMessage[] = []
  bob.on('message', (m) => got.push(m))
  const delivered = await sb(h, ['send', '--as', 'alice', '--to', 'carl', ...p, 'hi carl'])
  assert.equal(delivered.code, 0, delivered.stderr)
  assert.match(delivered.stdout, /delivered to carl \(200\)/)
  assert.equal(got[0]?.text, 'hi carl')

  // a poll-mode recipient that does not take: 300 after the ack timeout... a push session that never acks
  const mute = await SwitchboardClient.connect({ port, name: 'mute', autoAck: false })
  t.after(() => mute.close(200))
  mute.on('message', () => undefined)
  const notYet = await sb(h, ['send', '--as', 'alice', '--to', 'mute', ...p, 'ping'])
  assert.equal(notYet.code, 4, notYet.stdout + notYet.stderr)
  assert.match(notYet.stdout, /not delivered yet.*\(300\)/)

  // A sender the recipient blocks learns nothing (the same answer as for no such user), and the CLI says
  // "not delivered" rather than claiming the user does not exist.
  await mute.block('alice')
  const blocked = await sb(h, ['send', '--as', 'alice', '--to', 'mute', ...p, 'let me in'])
  assert.equal(blocked.code, 1)
  assert.match(blocked.stderr, /not delivered: no such user: mute — or a user who does not accept messages from you/)

  // too large: refused with the limit named
  const big = await sb(h, ['send', '--as', 'alice', '--to', 'carl', ...p, 'x'.repeat(70_000)])
  assert.equal(big.code, 1)
  assert.match(big.stderr, /maxTextBytes/)

  // bob's inbox: the stored message, then nothing
  const inbox = await sb(h, ['inbox', 'bob', ...p])
  assert.equal(inbox.code, 0, inbox.stderr)
  assert.match(inbox.stdout, /\[\d\d:\d\d:\d\d\] alice: are you there\?/)
  const again = await sb(h, ['inbox', 'bob', ...p])
  assert.equal(again.code, 0)
  assert.match(again.stdout, /\(no messages\)/, 'inbox acknowledged what it printed')

  // alice's queued 200 for bob's message arrived when bob took it; an unknown name has no inbox
  const stranger = await sb(h, ['inbox', 'stranger', ...p])
  assert.equal(stranger.code, 1)
  assert.match(stranger.stderr, /unknown name "stranger"/)
})

/**
 * A terminal driven through tmux on a private socket (-L), so a person's own tmux on this machine never
 * receives the test's keystrokes. One session per test; each start() replaces the program it runs.
 */
function terminal(t: TestContext, name: string) {
  const socket = `sbtest-${process.pid}-${name}`
  // A 'keep' session holds the tmux server up while start() replaces the chat's: killing the only session makes
  // the server exit (exit-empty), and a new-session racing that exit fails with "server exited unexpectedly" on a
  // busy machine. The old program is killed before the new one starts, so two never run at once.
  const session = 'chat'
  let started = false
  // -f /dev/null: the person's ~/.tmux.conf (key bindings, a default shell) does not apply to the test's server.
  const tmux = (...args: string[]): string =>
    execFileSync('tmux', ['-L', socket, '-f', '/dev/null', ...args], { encoding: 'utf8' })
  t.after(() => {
    try {
      tmux('kill-server')
    } catch {
      // already gone
    }
  })
  const screen = (): string => tmux('capture-pane', '-p', '-J', '-S', '-200', '-t', session)
  return {
    /** Run a shell command line in a fresh 160×50 terminal; it prints EXIT-<status> when it ends. */
    start(cmd: string): void {
      if (started) tmux('kill-session', '-t', session)
      else tmux('new-session', '-d', '-s', 'keep', 'sleep 600')
      started = true
      tmux('new-session', '-d', '-s', session, '-x', '160', '-y', '50', `${cmd}; echo EXIT-$?; sleep 60`)
    },
    screen,
    async waitFor(re: RegExp, ms = 15_000): Promise<string> {
      let last = ''
      try {
        return await until(`${re} on the screen`, () => re.test((last = screen())) && last, ms, 50)
      } catch (err) {
        throw new Error(`${(err as Error).message}:\n${last}`)
      }
    },
    type(line: string): void {
      tmux('send-keys', '-t', session, '-l', line)
      tmux('send-keys', '-t', session, 'Enter')
    },
  }
}

function hasTmux(): boolean {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

test(
  'switchboard chat through a pseudo-terminal (tmux): log in, send, receipt, /who, rename, 003/004 words, quit',
  { skip: !hasTmux() && 'tmux is not installed' },
  async (t) => {
    const { port } = await startTestServer(t)
    const h = home(t)
    const term = terminal(t, 'main')
    const { waitFor, type } = term

    const bob = await SwitchboardClient.connect({ port, name: 'bob' })
    t.after(() => bob.close(200))
    const bobGot: IncomingMessage[] = []
    bob.on('message', (m) => bobGot.push(m))
    const convs: string[] = []
    bob.on('conversation', (e) => {
      convs.push(e.event)
      if (e.event === 'request') bob.accept(e.convId)
    })

    term.start(`SWITCHBOARD_HOME=${h} ${process.execPath} ${BIN} chat alice --port ${port}`)
    // alice is not known here: the chat asks before registering her.
    await waitFor(/Register "alice" now\? \[y\/N\]/)
    type('y')
    await waitFor(/connected to .* as alice/)
    await waitFor(/alice> $/m)

    type('/msg bob hello from the terminal')
    await waitFor(/#1 → bob: hello from the terminal/)
    await waitFor(/#1 ✓✓ delivered to bob/)
    assert.equal(bobGot.at(-1)?.text, 'hello from the terminal')

    await bob.send('alice', 'hi back')
    await waitFor(/\[\d\d:\d\d:\d\d\] bob → you: hi back/)

    type('/who')
    await waitFor(/online \(2\):[\s\S]*alice\s+#\d+\s+via native[\s\S]*bob\s+#\d+/)

    type('plain text to the room')
    await waitFor(/#2 ✓ sent to 1 online/)
    assert.equal(bobGot.at(-1)?.text, 'plain text to the room')
    assert.equal(bobGot.at(-1)?.to, 0xffffffff)

    // 003: @target without text asks for it
    type('@bob')
    await waitFor(/text for bob> $/m)
    type('mail via the 003 word')
    await waitFor(/#3 ✓✓ delivered to bob/)

    // 003: !topic subscribes; refresh shows mail
    type('!news')
    await waitFor(/subscribed to news/)
    await bob.send({ kind: 'topic', topic: 'news' }, 'topic mail')
    await waitFor(/bob @news: topic mail/)
    type('refresh')
    await waitFor(/mail since you last looked \(2\):/)

    // 003: #user asks for a conversation
    type('#bob')
    await waitFor(/direct conversation with bob is open/)
    assert.ok(convs.includes('request'))
    type('just between us')
    await waitFor(/you ⇄ bob: just between us/)
    type('/close')
    await waitFor(/conversation with bob closed/)

    // 004: >>chname<< takes the first word
    type('>>chname<< alicia and more')
    await waitFor(/you are now alicia/)
    await waitFor(/alicia> $/m)
    type('/rename bob')
    await waitFor(/SB_ERR_NAME_TAKEN/)

    type('/history')
    await waitFor(/history of this session:[\s\S]*#1 → bob: hello from the terminal/)

    // 004: >>exit<< quits
    type('>>exit<<')
    await waitFor(/EXIT-0/)

    // The credentials followed the rename: `chat alicia` resumes the same user.
    const creds = (await import('node:fs')).readFileSync(join(h, 'credentials.json'), 'utf8')
    assert.match(creds, /"alicia"/)
  },
)

test(
  'switchboard chat (tmux): a name is registered only on purpose; send --as the same name leaves the chat connected; a replaced chat says so and exits 2; a server stop shows its reason on one status line',
  { skip: !hasTmux() && 'tmux is not installed' },
  async (t) => {
    const first = await startTestServer(t)
    const port = first.port
    const h = home(t)
    const term = terminal(t, 'ended')
    const chat = (name: string, ...more: string[]): void =>
      term.start(`SWITCHBOARD_HOME=${h} ${process.execPath} ${BIN} chat ${name} --port ${port} ${more.join(' ')}`)

    // Asked, and the answer is no: nothing is registered, the chat says the name is unknown and exits 1.
    chat('dave')
    await term.waitFor(/Register "dave" now\? \[y\/N\]/)
    term.type('n')
    const refused = await term.waitFor(/EXIT-1/)
    assert.match(refused, /unknown name "dave"/)
    assert.equal(existsSync(join(h, 'credentials.json')), false)

    // --register registers without asking.
    const alice = await SwitchboardClient.connect({ port, name: 'alice', reconnect: false })
    t.after(() => alice.close(200))
    alice.on('message', () => undefined) // a listener, so alice acknowledges what she gets
    chat('bob', '--register')
    await term.waitFor(/connected to .* as bob/)

    // The README's own example while bob's chat is open: the script logs in SEND_ONLY, beside the chat's session,
    // which stays connected and keeps receiving.
    const script = await sb(h, ['send', '--as', 'bob', '--to', 'alice', '--port', String(port), 'from a script'])
    assert.equal(script.code, 0, script.stderr)
    assert.match(script.stdout, /delivered to alice \(200\)/)
    await alice.send('bob', 'the chat is still here')
    await term.waitFor(/alice → you: the chat is still here/)
    assert.doesNotMatch(term.screen(), /this chat was ended/)

    // Another login of the same device (its token, without SEND_ONLY) replaces the chat's session.
    const saved = new FileCredentialStore(join(h, 'credentials.json')).get(`127.0.0.1:${port}`, 'bob')!
    const again = await SwitchboardClient.connect({ port, name: 'bob', id: saved.id, token: saved.token, reconnect: false })
    t.after(() => again.close(200))
    const ended = await term.waitFor(/EXIT-\d/)
    assert.match(ended, /this chat was ended: "bob" logged in again elsewhere with this device's token/)
    assert.match(ended, /EXIT-2/, 'a replaced chat exits non-zero')

    // The server stops (what SIGTERM does): the chat shows the server's reason once, then one status line
    // that is updated per attempt, not a line per attempt.
    chat('bob')
    await term.waitFor(/connected to .* as bob/)
    await first.stop()
    await term.waitFor(/reconnecting: attempt [4-9]/)
    const screen = term.screen()
    const lines = screen.split('\n')
    assert.equal(lines.filter((l) => /connection lost/.test(l)).length, 1, screen)
    assert.match(screen, /connection lost — the server said: the server is shutting down \(shutdown\)/)
    assert.equal(lines.filter((l) => /attempt \d/.test(l)).length, 1, `one status line:\n${screen}`)

    // It comes back: the status line goes, one line says so.
    await startTestServer(t, { port }, { dataDir: first.dataDir })
    const back = await term.waitFor(/reconnected as bob after \d+ attempt/, 20_000)
    assert.doesNotMatch(back.split('\n').at(-1) ?? '', /attempt/)
    term.type('/quit')
    await term.waitFor(/EXIT-0/)
  },
)

test('switchboard register --password-stdin, then login --password-stdin on another machine (a new device, its token saved), then history', async (t) => {
  const { port } = await startTestServer(t)
  const laptop = home(t)
  const phone = home(t)
  const p = ['--port', String(port)]
  const PASSWORD = 'correct horse battery'

  const reg = await sbIn(laptop, ['register', 'erin', '--password-stdin', ...p], `${PASSWORD}\n`)
  assert.equal(reg.code, 0, reg.stderr)
  assert.match(reg.stdout, /registered erin \(#\d+\) with a password/)
  const frank = await SwitchboardClient.connect({ port, name: 'frank' })
  t.after(() => frank.close(200))
  frank.on('message', () => undefined)
  assert.equal((await sb(laptop, ['send', '--as', 'erin', '--to', 'frank', ...p, 'hello frank'])).code, 0)
  await frank.send('erin', 'hello erin')

  // The wrong password: refused, nothing saved.
  const wrong = await sbIn(phone, ['login', 'erin', '--password-stdin', ...p], 'not the password\n')
  assert.equal(wrong.code, 1)
  assert.match(wrong.stderr, /wrong name or password for "erin"/)
  assert.equal(existsSync(join(phone, 'credentials.json')), false)

  const login = await sbIn(phone, ['login', 'erin', '--password-stdin', ...p], `${PASSWORD}\n`)
  assert.equal(login.code, 0, login.stderr)
  assert.match(login.stdout, /logged in as erin \(#\d+\): this is device \d+/)
  const saved = new FileCredentialStore(join(phone, 'credentials.json')).get(`127.0.0.1:${port}`, 'erin')
  const laptopToken = new FileCredentialStore(join(laptop, 'credentials.json')).get(`127.0.0.1:${port}`, 'erin')
  assert.ok(saved !== undefined && laptopToken !== undefined && saved.token !== laptopToken.token, 'a token of its own')

  // The phone's device reads the conversation from the server, oldest first, both directions.
  const h = await sb(phone, ['history', 'erin', '--with', 'frank', ...p])
  assert.equal(h.code, 0, h.stderr)
  const lines = h.stdout.trim().split('\n')
  assert.equal(lines.length, 2, h.stdout)
  assert.match(lines[0]!, /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] #\d+ you → frank: hello frank$/)
  assert.match(lines[1]!, /#\d+ frank → you: hello erin$/)
  const all = await sb(phone, ['history', 'erin', ...p])
  assert.match(all.stdout, /you → frank: hello frank\n.*frank → you: hello erin\n$/)
  const one = await sb(phone, ['history', 'erin', '--with', 'frank', '--limit', '1', ...p])
  assert.match(one.stdout, /frank → you: hello erin\n\(older messages: --before (\d+)\)/)
  const before = /--before (\d+)/.exec(one.stdout)![1]!
  const older = await sb(phone, ['history', 'erin', '--with', 'frank', '--limit', '1', '--before', before, ...p])
  assert.match(older.stdout, /you → frank: hello frank\n$/)
})

test(
  'switchboard chat (tmux): /password without echo, /devices, /history NAME from the server, /revoke, a sent copy from another device',
  { skip: !hasTmux() && 'tmux is not installed' },
  async (t) => {
    const { port } = await startTestServer(t)
    const h = home(t)
    const term = terminal(t, 'devices')
    const { waitFor, type } = term
    const PASSWORD = 'correct horse battery'

    const gus = await SwitchboardClient.connect({ port, name: 'gus' })
    t.after(() => gus.close(200))
    gus.on('message', () => undefined)

    term.start(`SWITCHBOARD_HOME=${h} ${process.execPath} ${BIN} chat ida --register --port ${port}`)
    await waitFor(/connected to .* as ida/)
    type('/msg gus hello gus')
    await waitFor(/#1 ✓✓ delivered to gus/)
    await gus.send('ida', 'hello ida')
    await waitFor(/gus → you: hello ida/)

    // /password: asked three times, nothing typed is echoed.
    type('/password')
    await waitFor(/current password \(Enter if none\)> $/m)
    type('')
    await waitFor(/new password \(Enter to clear it\)> $/m)
    type(PASSWORD)
    await waitFor(/new password again> $/m)
    type(PASSWORD)
    await waitFor(/password set: switchboard login ida/)
    assert.doesNotMatch(term.screen(), /correct horse/, 'the password was not echoed')

    // A second device, made with the password: the chat lists it, sees what it sends, and revokes it.
    const phone = await SwitchboardClient.connect({ port, name: 'ida', password: PASSWORD, reconnect: false })
    t.after(() => phone.close(200))
    const phoneClosed = new Promise<string>((res) => phone.once('closed', (e) => res(e.reason)))
    await phone.send('gus', 'from the phone')
    await waitFor(/you → gus \(from another device\): from the phone/)
    type('/devices')
    const devices = await waitFor(/your devices \(2\):[\s\S]*\(this one\)/)
    const phoneId = (await phone.devices()).find((d) => d.current)!.id
    assert.match(devices, new RegExp(`\\s${phoneId}\\s+native\\s+since`))

    type('/history gus')
    await waitFor(
      /history with gus:\n\s+\[[^\]]+\] #\d+ you → gus: hello gus\n\s+.*gus → you: hello ida\n\s+.*you → gus: from the phone/,
    )

    type(`/revoke ${phoneId}`)
    await waitFor(new RegExp(`device ${phoneId} revoked`))
    assert.equal(await phoneClosed, 'revoked')
    type('/quit')
    await waitFor(/EXIT-0/)
  },
)
