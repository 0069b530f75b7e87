/**
 * The terminal client as a person and a script use it: `switchboard send` / `switchboard inbox` exit codes
 * and output (spawned `node bin/switchboard.js`, SWITCHBOARD_HOME in a temp dir), and `switchboard chat`
 * driven through a real pseudo-terminal with tmux: log in, send, see the receipt, /who, rename, quit.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { startTestServer } from '../helpers/server.js'
import { SwitchboardClient, type IncomingMessage } from '../../src/client/index.js'

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

function home(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'sb-home-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

test('switchboard send and inbox: exit codes and output', async (t) => {
  const { port } = await startTestServer(t, { ackTimeout: 500 })
  const h = home(t)
  const p = ['--port', String(port)]

  // bob registers (via inbox? no: inbox never registers) — a first send registers the sender.
  const refused = await sb(h, ['send', '--as', 'bob', '--to', 'nobody', ...p, 'hello?'])
  assert.equal(refused.code, 1)
  assert.match(refused.stderr, /no such user: nobody.*SB_ERR_UNKNOWN_RECIPIENT/)
  assert.equal(statSync(join(h, 'credentials.json')).mode & 0o777, 0o600, 'bob was registered and remembered')

  // bob is offline: stored, exit 3
  const stored = await sb(h, ['send', '--as', 'alice', '--to', 'bob', ...p, 'are', 'you', 'there?'])
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
  assert.match(stranger.stderr, /no token known for "stranger"/)
})

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
    const session = `sbchat-${process.pid}`
    const tmux = (...args: string[]): string => execFileSync('tmux', args, { encoding: 'utf8' })
    const screen = (): string => tmux('capture-pane', '-p', '-J', '-S', '-200', '-t', session)
    const waitFor = async (re: RegExp, ms = 15_000): Promise<string> => {
      const start = Date.now()
      for (;;) {
        const s = screen()
        if (re.test(s)) return s
        if (Date.now() - start > ms) throw new Error(`timed out waiting for ${re} on the screen:\n${s}`)
        await new Promise((r) => setTimeout(r, 100))
      }
    }
    const type = (line: string): void => {
      tmux('send-keys', '-t', session, '-l', line)
      tmux('send-keys', '-t', session, 'Enter')
    }

    const bob = await SwitchboardClient.connect({ port, name: 'bob' })
    t.after(() => bob.close(200))
    const bobGot: IncomingMessage[] = []
    bob.on('message', (m) => bobGot.push(m))
    const convs: string[] = []
    bob.on('conversation', (e) => {
      convs.push(e.event)
      if (e.event === 'request') bob.accept(e.convId)
    })

    tmux(
      'new-session',
      '-d',
      '-s',
      session,
      '-x',
      '160',
      '-y',
      '50',
      `SWITCHBOARD_HOME=${h} ${process.execPath} ${BIN} chat alice --port ${port}; echo CHAT-EXIT-$?; sleep 60`,
    )
    t.after(() => {
      try {
        tmux('kill-session', '-t', session)
      } catch {
        // already gone
      }
    })
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
    await waitFor(/CHAT-EXIT-0/)

    // The credentials followed the rename: `chat alicia` resumes the same user.
    const creds = (await import('node:fs')).readFileSync(join(h, 'credentials.json'), 'utf8')
    assert.match(creds, /"alicia"/)
  },
)
