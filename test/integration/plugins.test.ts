/**
 * Gateways, stores and buses are plugins (src/plugin.ts) that load their implementation, and any native
 * package it needs, only when they start. Proved on a real `switchboard serve` process in which zeromq, pg
 * and ioredis cannot be resolved (test/helpers/hide-packages.mjs): without the plugins that need them it
 * starts and serves; with one of them it stops with an error naming the package.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawnServer } from '../../scripts/spawn-server.js'
import { registered } from '../helpers/native-client.js'
import { startTestServer } from '../helpers/server.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const HIDE = ['--import', './test/helpers/hide-packages.mjs']
const env = { ...process.env, SB_HIDE_PACKAGES: 'zeromq,pg,ioredis' }

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'sb-plugins-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Run `switchboard serve` with the packages hidden; resolves with its exit code and stderr. */
function serveHidden(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...HIDE, 'bin/switchboard.js', 'serve', '--port', '0', '--http-port', '-1', ...args],
      { cwd: ROOT, env, timeout: 30_000 },
      (err, _stdout, stderr) => resolve({ code: err === null ? 0 : ((err as { code?: number }).code ?? null), stderr }),
    )
  })
}

test('without the 003 gateway, PostgreSQL and Redis, a server starts and serves with zeromq, pg and ioredis not installed', async (t) => {
  const dir = tempDir(t)
  const args = ['--port', '0', '--http-port', '0', '--p001-port', '0', '--p002-port', '0', '--p004-port', '0']
  const server = await spawnServer([...args, '--data-dir', dir, '--log-level', 'warn'], { nodeArgs: HIDE, env })
  t.after(() => server.child.kill('SIGKILL'))
  const alice = await registered(t, server.port, 'alice')
  await alice.expect({ type: 'PING' }, 'PONG')
  server.child.kill('SIGTERM')
  await server.exited
  assert.equal(server.child.exitCode, 0, 'a clean stop')
})

test('the hiding works: a plugin that needs a missing package stops the start with an error naming it', async (t) => {
  const dir = tempDir(t)
  const cases = [
    { args: ['--zmq-pub-port', '0'], message: /seed 003 gateway .* needs the npm package zeromq, which is not installed/ },
    { args: ['--store', 'postgres://127.0.0.1:1/none'], message: /PostgreSQL store .* needs the npm package pg/ },
    { args: ['--bus', 'redis://127.0.0.1:1'], message: /Redis bus .* needs the npm package ioredis/ },
  ]
  for (const c of cases) {
    const r = await serveHidden([...c.args, '--data-dir', dir])
    assert.equal(r.code, 1, `${c.args.join(' ')}: exit code`)
    assert.match(r.stderr, c.message, c.args.join(' '))
  }
})

test('--store and --bus name their backend by scheme; an unknown one is refused with what is accepted', async (t) => {
  const r = await serveHidden(['--store', 'mysql://127.0.0.1/x', '--data-dir', tempDir(t)])
  assert.equal(r.code, 1)
  assert.match(
    r.stderr,
    /--store must be 'sqlite' or sqlite:<file> .*, or a postgres:\/\/ URL \(cluster\), or memory: .*; not "mysql:\/\/127.0.0.1\/x"/,
  )
  const b = await serveHidden(['--bus', 'nats://127.0.0.1', '--data-dir', tempDir(t)])
  assert.equal(b.code, 1)
  assert.match(b.stderr, /--bus must be 'local' \(single node\), or a redis:\/\/ URL \(cluster\); not "nats:\/\/127.0.0.1"/)
})

test('sqlite:<file> puts the database where it says', async (t) => {
  const file = join(tempDir(t), 'elsewhere.db')
  const { port } = await startTestServer(t, { store: `sqlite:${file}` })
  await registered(t, port, 'bob')
  assert.ok(existsSync(file), 'the database file is at the path given')
})
