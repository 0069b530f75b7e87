/**
 * The README's example that needs nothing but this repository: the few lines of Python for seed 002's room
 * (the ```python block in README.md, run as written) talk with a native SDK user through the p002 gateway.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { startTestServer } from '../helpers/server.js'
import { SwitchboardClient, type IncomingMessage } from '../../src/client/index.js'

const ROOT = resolve(import.meta.dirname, '../..')

function hasPython(): boolean {
  try {
    execFileSync('python3', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

test(
  'README: room.py (seed 002 in a few lines of Python) talks with a native user',
  { skip: !hasPython() && 'no python3' },
  async (t) => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
    const code = /```python\n([\s\S]*?)```/.exec(readme)?.[1]
    assert.ok(code !== undefined, 'the README has a python block')
    const dir = mkdtempSync(join(tmpdir(), 'sb-readme-'))
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    writeFileSync(join(dir, 'room.py'), code)

    const { server, port } = await startTestServer(t, { p002Port: 0 })
    const alice = await SwitchboardClient.connect({ port, name: 'alice' })
    t.after(() => alice.close(200))
    const aliceGot: IncomingMessage[] = []
    alice.on('message', (m) => aliceGot.push(m))

    const py = spawn('python3', [join(dir, 'room.py'), 'dave', String(server.port('p002'))], { stdio: ['pipe', 'pipe', 'pipe'] })
    t.after(() => py.kill())
    let out = ''
    let err = ''
    const printed = (line: string): Promise<void> =>
      new Promise((res, rej) => {
        const check = (): void => {
          if (out.split('\n').includes(line)) res()
        }
        py.stdout.on('data', (b: Buffer) => {
          out += b.toString('utf8')
          check()
        })
        py.once('exit', () => rej(new Error(`room.py ended before printing "${line}": ${out}${err}`)))
        check()
      })
    py.stderr.on('data', (b: Buffer) => (err += b.toString('utf8')))

    // dave types a line: it reaches the room (alice) and comes back to dave, as in the original server.
    const echoed = printed('dave: hello from python')
    py.stdin.write('hello from python\n')
    await echoed
    for (let i = 0; i < 100 && aliceGot.length === 0; i++) await new Promise((r) => setTimeout(r, 20))
    assert.equal(aliceGot[0]?.fromName, 'dave')
    assert.equal(aliceGot[0]?.text, 'hello from python')

    // alice says something in the room: room.py prints it.
    const heard = printed('alice: hi dave')
    await alice.send({ kind: 'all' }, 'hi dave')
    await heard

    const exited = new Promise<number | null>((res) => py.once('exit', res))
    py.stdin.end()
    assert.equal(await exited, 0, err)
  },
)
