/**
 * Passwords, devices and history through the clients in other languages (issue 11 item 9), against one real
 * server. A user (alice) registered by one client has a conversation with bob and sets a password; then the
 * Python, C++ and C# clients in turn:
 *
 *   1. log in with the password as a new device: WELCOME brings a new, non-empty token;
 *   2. page the conversation's history two messages at a time, newest first, both sides of it (alice's own
 *      messages as sent copies, flag SENT);
 *   3. log in again with the token they were given (so they kept it) and change the password, giving the current
 *      one — the next client logs in with the new password, and the first password is refused at the end.
 *
 * Then alice's devices are listed: the registering one and one per password login.
 * Agent commands: clients/python/switchboard_client/agent.py.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { agentLanguages, startServer, type AgentRun, type Lang } from './harness.js'

const SENT = 8

/** Run an agent to its end; its lines, asserting it exited 0. */
async function ok(lang: Lang, args: string[]): Promise<string[]> {
  const run: AgentRun = lang.agent(args)
  const r = await run.done
  assert.equal(r.code, 0, `${lang.name} ${args.join(' ')}: exit ${r.code}\n${r.stdout}\n${r.stderr}`)
  return run.lines
}

function welcome(lines: string[]): { id: number; token: string } {
  const m = /^WELCOME (\d+) (\S+)$/.exec(lines.find((l) => l.startsWith('WELCOME ')) ?? '')
  assert.ok(m, `no WELCOME with a token in ${JSON.stringify(lines)}`)
  return { id: Number(m[1]), token: m[2]! }
}

test(
  'passwords and history: each client logs in with the password as a new device and pages a conversation',
  { timeout: 600_000 },
  async (t) => {
    const server = await startServer()
    t.after(() => server.stop())
    const skipped: string[] = []
    const langs = agentLanguages(server, skipped)
    if (langs.length === 0) {
      t.skip(skipped.join('; '))
      return
    }
    if (skipped.length > 0) t.diagnostic(`skipped: ${skipped.join('; ')}`)
    const first = langs[0]!
    const other = langs[1] ?? first

    // alice registers with one client, bob with another; they talk, alice's side from the first client
    const alice = welcome(await ok(first, ['register', '--name', 'alice']))
    const bob = welcome(await ok(other, ['register', '--name', 'bob']))
    const said: [string, string][] = [
      ['alice', 'a1 hello'],
      ['bob', 'b1 hi alice'],
      ['alice', 'a2 zoë 日本'],
      ['bob', 'b2 bye'],
      ['alice', 'a3 last'],
    ]
    for (const [who, text] of said) {
      const [lang, me, to] = who === 'alice' ? [first, alice, 'bob'] : [other, bob, 'alice']
      await ok(lang, ['send', '--name', who, '--token', me.token, '--to', to, '--text', text])
    }

    let password = 'first password'
    await ok(first, ['set-password', '--name', 'alice', '--token', alice.token, '--new-password', password])

    const tokens = new Set([alice.token])
    for (const lang of langs) {
      await t.test(`${lang.name}: password login as a new device, history paged newest first`, async () => {
        const lines = await ok(lang, ['history', '--name', 'alice', '--password', password, '--with', 'bob', '--limit', '2'])
        const w = welcome(lines)
        assert.equal(w.id, alice.id)
        assert.ok(!tokens.has(w.token), 'a password login gets a new token')
        tokens.add(w.token)

        const hist = lines
          .filter((l) => l.startsWith('HIST '))
          .map((l) => {
            const [head, text] = l.split('\t') as [string, string]
            const [, seq, from, to, flags] = head.split(' ')
            return { seq: Number(seq), from, to: Number(to), flags: Number(flags), text }
          })
        assert.deepEqual(
          hist.map((h) => [h.from, h.text]),
          [...said].reverse(),
          'both sides of the conversation, newest first',
        )
        for (let i = 1; i < hist.length; i++) assert.ok(hist[i]!.seq < hist[i - 1]!.seq, `seqs fall: ${JSON.stringify(hist)}`)
        for (const h of hist)
          if (h.from === 'alice') {
            assert.equal(h.to, bob.id, 'a sent copy names its recipient')
            assert.equal(h.flags & SENT, SENT, 'a sent copy is flagged SENT')
          } else {
            assert.equal(h.to, alice.id)
            assert.equal(h.flags & SENT, 0)
          }
        assert.deepEqual(
          lines.filter((l) => l.startsWith('PAGE ')),
          ['PAGE 1 2', 'PAGE 1 2', 'PAGE 0 1'],
          'pages of two, the last one saying there is no more',
        )
        assert.ok(lines.includes('HISTORY 5'))

        // the client kept the device's token: it logs in with it and changes the password (giving the current one)
        const next = `${password} after ${lang.name}`
        await ok(lang, ['set-password', '--name', 'alice', '--token', w.token, '--password', password, '--new-password', next])
        password = next
      })
    }

    await t.test('the first password is refused now; the last one works', async () => {
      const refused = first.agent(['history', '--name', 'alice', '--password', 'first password', '--with', 'bob'])
      const r = await refused.done
      assert.equal(r.code, 2)
      assert.match(r.stderr, /SB_ERR_AUTH/)
      const lines = await ok(first, ['devices', '--name', 'alice', '--password', password])
      // the registering device, one per client's password login, and this one
      assert.ok(lines.includes(`DEVICES ${langs.length + 2}`), JSON.stringify(lines))
      assert.equal(lines.filter((l) => /^DEVICE \d+ 1\t/.test(l)).length, 1, 'exactly one device is the current one')
    })
  },
)
