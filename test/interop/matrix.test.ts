/**
 * The interop matrix: one real Switchboard server, and every client — Python, C++, C# (each through its own
 * small agent program) and the TypeScript SDK (in process) — sends to and receives from every client, itself
 * included. For each pair (sender S, recipient R):
 *
 *   live     R is connected (push); S sends with a receipt; R gets the text and acknowledges; S sees 200.
 *   offline  R is not connected; S sends; S sees ACCEPTED stored and a 202 receipt; R connects later and gets
 *            the message, by polling (TAKE) or pushed on login, alternating across the matrix.
 *
 * Agents share one command line (see clients/python/switchboard_client/agent.py):
 *   register --name N -> WELCOME <id> <token>
 *   --name N --token T send --to R --text X --expect-receipt C -> ACCEPTED <status> <seq>, RECEIPT <code>
 *   --name N --token T recv --count K [--poll] -> READY, MSG <from>\t<text>
 * The matrix is printed as a table and written to test-artifacts/interop-matrix.md.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { SwitchboardClient } from '../../src/client/index.js'
import { ROOT, agentLanguages, startServer, type AgentRun, type Lang, type Server } from './harness.js'

// ------------------------------------------------------------------ the TypeScript side, in process

/** An AgentRun fed by an async function instead of a child process (same lines, same exit codes). */
function inProcess(body: (out: (line: string) => void) => Promise<number>): AgentRun {
  const lines: string[] = []
  const waiters: { re: RegExp; resolve(l: string): void }[] = []
  let ended = false
  const endWaiters: (() => void)[] = []
  let stderr = ''
  const out = (line: string): void => {
    lines.push(line)
    for (const w of waiters.splice(0))
      if (w.re.test(line)) w.resolve(line)
      else waiters.push(w)
  }
  const done = body(out)
    .catch((err: unknown) => {
      stderr = `ERROR ${err instanceof Error ? err.message : String(err)}`
      return 2
    })
    .then((code) => {
      ended = true
      for (const w of endWaiters.splice(0)) w()
      return { code, stdout: lines.map((l) => l + '\n').join(''), stderr }
    })
  return {
    lines,
    done,
    child: undefined as never,
    waitFor(re, timeoutMs = 20_000) {
      const seen = lines.find((l) => re.test(l))
      if (seen !== undefined) return Promise.resolve(seen)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line ${re} in time; got ${JSON.stringify(lines)}`)), timeoutMs)
        waiters.push({ re, resolve: (l) => (clearTimeout(timer), resolve(l)) })
        const onEnd = (): void => (
          clearTimeout(timer),
          reject(new Error(`ended before ${re}: ${JSON.stringify(lines)} ${stderr}`))
        )
        if (ended) onEnd()
        else endWaiters.push(onEnd)
      })
    },
  }
}

function tsAgent(server: Server, args: string[]): AgentRun {
  const opt = (k: string): string | undefined => {
    const i = args.indexOf(k)
    return i >= 0 ? args[i + 1] : undefined
  }
  const cmd = args.find((a) => a === 'register' || a === 'send' || a === 'recv')
  const name = opt('--name') ?? ''
  const base = { host: server.host, port: server.port, name, reconnect: false }
  return inProcess(async (out) => {
    if (cmd === 'register') {
      const c = await SwitchboardClient.connect({ ...base, register: true })
      out(`WELCOME ${c.id} ${c.token}`)
      await c.close()
      return 0
    }
    const poll = args.includes('--poll')
    const c = await SwitchboardClient.connect({
      ...base,
      token: opt('--token') ?? '',
      register: false,
      mode: poll ? 'poll' : 'push',
    })
    try {
      const deadline = Date.now() + 15_000
      if (cmd === 'send') {
        const expect = Number(opt('--expect-receipt') ?? '0')
        const msgId = c.nextMsgId()
        const wanted = new Promise<boolean>((resolve) => {
          c.on('receipt', (r) => {
            if (r.msgId !== msgId) return
            out(`RECEIPT ${r.status}`)
            if (r.status === expect) resolve(true)
          })
          setTimeout(() => resolve(false), deadline - Date.now()).unref()
        })
        const res = await c.send(opt('--to') ?? '', opt('--text') ?? '', { receipt: expect !== 0, msgId, idempotent: false })
        out(`ACCEPTED ${res.accepted ?? '?'} ${res.seq}`)
        if (expect === 0) return 0
        if (await wanted) return 0
        out('TIMEOUT')
        return 1
      }
      const count = Number(opt('--count') ?? '1')
      let got = 0
      out('READY')
      if (poll) {
        while (got < count && Date.now() < deadline)
          for (const m of await c.take(count - got, 'take', 500))
            if (m.kind === 'text') {
              out(`MSG ${m.fromName}\t${m.text}`)
              got++
            }
      } else {
        await new Promise<void>((resolve) => {
          c.on('message', (m) => {
            if (m.kind !== 'text') return
            out(`MSG ${m.fromName}\t${m.text}`)
            if (++got >= count) resolve()
          })
          setTimeout(resolve, deadline - Date.now()).unref()
        })
      }
      if (got < count) {
        out('TIMEOUT')
        return 1
      }
      return 0
    } finally {
      await c.close()
    }
  })
}

// ------------------------------------------------------------------ the languages

function languages(server: Server, skipped: string[]): Lang[] {
  return [...agentLanguages(server, skipped), { name: 'ts', agent: (a) => tsAgent(server, a) }]
}

interface Cell {
  live: string
  offline: string
  ok: boolean
}

function table(langs: Lang[], cells: Map<string, Cell>): string {
  const head = ['sender ↓ / recipient →', ...langs.map((l) => l.name)]
  const rows = langs.map((s) => [
    s.name,
    ...langs.map((r) => {
      const c = cells.get(`${s.name}>${r.name}`)
      return c === undefined ? 'not run' : `${c.ok ? '✓' : '✗'} ${c.live}; ${c.offline}`
    }),
  ])
  const widths = head.map((_, i) => Math.max(...[head, ...rows].map((r) => [...r[i]!].length)))
  const line = (r: string[]): string => `| ${r.map((c, i) => c + ' '.repeat(widths[i]! - [...c].length)).join(' | ')} |`
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n')
}

test(
  'interop matrix: every client sends to and receives from every client (live + receipt 200, offline + 202)',
  { timeout: 900_000 },
  async (t) => {
    const server = await startServer(['--ack-timeout', '3000'])
    t.after(() => server.stop())
    const skipped: string[] = []
    const langs = languages(server, skipped)
    const nonce = Math.random().toString(36).slice(2, 7)
    const users = new Map<string, { a: { name: string; token: string }; b: { name: string; token: string } }>()

    // each client registers its own two users: a (sends) and b (receives)
    for (const l of langs) {
      const reg = async (role: string): Promise<{ name: string; token: string }> => {
        const name = `${role}_${l.name}_${nonce}`
        const r = l.agent(['register', '--name', name])
        const res = await r.done
        assert.equal(res.code, 0, `${l.name} register: ${res.stdout} ${res.stderr}`)
        const m = /^WELCOME (\d+) (\S+)$/m.exec(res.stdout)
        assert.ok(m, `${l.name} register printed ${res.stdout}`)
        return { name, token: m[2]! }
      }
      users.set(l.name, { a: await reg('a'), b: await reg('b') })
    }

    const cells = new Map<string, Cell>()
    for (const [si, s] of langs.entries())
      for (const [ri, r] of langs.entries()) {
        const from = users.get(s.name)!.a
        const to = users.get(r.name)!.b
        // a checkerboard: every recipient picks up offline messages both ways, by TAKE and pushed on login
        const poll = (si + ri) % 2 === 0
        await t.test(`${s.name} → ${r.name}`, async () => {
          const cell: Cell = { live: 'live ✗', offline: 'offline ✗', ok: false }
          cells.set(`${s.name}>${r.name}`, cell)
          const login = (u: { name: string; token: string }): string[] => ['--name', u.name, '--token', u.token]

          // live: the recipient is connected; the sender waits for the 200 that its acknowledgement causes
          const liveText = `${s.name}→${r.name} live héllo ✓ ${nonce}`
          const recv = r.agent([...login(to), 'recv', '--count', '1'])
          await recv.waitFor(/^READY$/)
          const send = s.agent([...login(from), 'send', '--to', to.name, '--text', liveText, '--expect-receipt', '200'])
          const [sr, rr] = await Promise.all([send.done, recv.done])
          assert.equal(sr.code, 0, `live send: ${sr.stdout} ${sr.stderr}`)
          assert.match(sr.stdout, /^ACCEPTED (queued|\?) \d+$/m)
          assert.match(sr.stdout, /^RECEIPT 200$/m)
          assert.equal(rr.code, 0, `live recv: ${rr.stdout} ${rr.stderr}`)
          assert.ok(rr.stdout.includes(`MSG ${from.name}\t${liveText}\n`), `live recv got ${rr.stdout}`)
          cell.live = 'live 200'

          // offline: the recipient is not connected; 202 at once; it picks the message up later
          const offText = `${s.name}→${r.name} waited offline ${nonce}`
          const off = await s.agent([...login(from), 'send', '--to', to.name, '--text', offText, '--expect-receipt', '202']).done
          assert.equal(off.code, 0, `offline send: ${off.stdout} ${off.stderr}`)
          assert.match(off.stdout, /^ACCEPTED (stored|\?) \d+$/m)
          assert.match(off.stdout, /^RECEIPT 202$/m)
          const later = await r.agent([...login(to), 'recv', '--count', '1', ...(poll ? ['--poll'] : [])]).done
          assert.equal(later.code, 0, `offline recv: ${later.stdout} ${later.stderr}`)
          assert.ok(later.stdout.includes(`MSG ${from.name}\t${offText}\n`), `offline recv got ${later.stdout}`)
          cell.offline = `offline 202→${poll ? 'take' : 'push'}`
          cell.ok = true
        })
      }

    const out = [
      '# Interop matrix',
      '',
      `Each cell: sender (row) to recipient (column). "live 200": delivered to a connected recipient, the sender got`,
      `receipt 200 after the recipient's ACK. "offline 202→take|push": sent while the recipient was offline, receipt 202,`,
      `then picked up by polling (TAKE) or pushed on login.`,
      '',
      table(langs, cells),
      '',
      ...(skipped.length > 0 ? ['Not in this run: ' + skipped.join('; ')] : []),
    ].join('\n')
    console.log('\n' + out + '\n')
    fs.mkdirSync(path.join(ROOT, 'test-artifacts'), { recursive: true })
    fs.writeFileSync(path.join(ROOT, 'test-artifacts', 'interop-matrix.md'), out + '\n')
    assert.equal([...cells.values()].filter((c) => c.ok).length, langs.length * langs.length, 'every cell of the matrix passed')
    assert.ok(langs.length >= 2)
  },
)
