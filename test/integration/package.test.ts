/**
 * The package as a user installs it (issue 14 items 1–3): `npm pack` (prepack builds dist/ and web/dist/),
 * the tarball installed into a fresh project with `--omit=dev`, then, with plain Node and no TypeScript
 * loader: the SDK imported from `switchboard/client` and used against a server started from `switchboard`,
 * the declaration files type-checked by a consumer, the `switchboard` command serving the web page, and
 * cluster mode without its optional packages failing with an error that says what to install.
 * Slow (a build, and an install that compiles better-sqlite3); it uses the npm registry through npm's cache.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const require = createRequire(import.meta.url)

function npm(args: string[], cwd: string): string {
  return execFileSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd,
    encoding: 'utf8',
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SWITCHBOARD_'))),
    maxBuffer: 64 * 1024 * 1024,
  })
}

const APP = `
import { startServer, resolveConfig, silentLogger, VERSION } from 'switchboard'
import { SwitchboardClient } from 'switchboard/client'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const dataDir = mkdtempSync(join(tmpdir(), 'sb-app-'))
const server = await startServer(resolveConfig({ port: 0, httpPort: -1, dataDir }, {}), silentLogger)
const port = server.port('native')
const alice = await SwitchboardClient.connect({ port, name: 'alice', reconnect: false })
const bob = await SwitchboardClient.connect({ port, name: 'bob', reconnect: false })
const got = new Promise((resolve) => alice.on('message', (m) => resolve(m.text)))
await bob.send('alice', 'hello from an installed package')
console.log(JSON.stringify({ version: VERSION, text: await got, loader: process.execArgv }))
await Promise.all([alice.close(), bob.close()])
await server.close()
`

const TYPED_APP = `
import { startServer, resolveConfig, makeLogger, type RunningServer } from 'switchboard'
import { SwitchboardClient, type IncomingMessage } from 'switchboard/client'
import { wsConnector } from 'switchboard/client/browser'

export async function run(): Promise<string> {
  const { log } = makeLogger('info', 'json')
  const server: RunningServer = await startServer(resolveConfig({ port: 0 }, {}), log)
  const c = await SwitchboardClient.connect({ port: server.port('native'), name: 'typed' })
  const m: Promise<IncomingMessage> = new Promise((r) => c.on('message', r))
  void wsConnector
  await server.close()
  return (await m).text
}
`

test(
  'npm pack, installed with --omit=dev into a fresh project: the SDK and the server work from the package',
  { timeout: 900_000 },
  async (t) => {
    const work = mkdtempSync(join(tmpdir(), 'sb-pack-'))
    t.after(() => rmSync(work, { recursive: true, force: true }))

    // Build only what is stale (under `npm test` nothing: it built first), then pack without prepack's full
    // rebuild: that deletes dist/ while the other test files of the run start servers from it.
    const built = spawnSync(process.execPath, ['scripts/build.mjs', '--if-stale'], { cwd: ROOT, stdio: 'inherit' })
    assert.equal(built.status, 0, 'the build')
    const [packed] = JSON.parse(npm(['pack', '--ignore-scripts', '--json', '--pack-destination', work], ROOT)) as {
      filename: string
      files: { path: string }[]
    }[]
    const files = packed!.files.map((f) => f.path)
    for (const want of [
      'bin/switchboard.js',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/client/index.js',
      'dist/client/browser.d.ts',
      'web/dist/index.html',
    ])
      assert.ok(files.includes(want), `the package has ${want}`)
    const extra = files.filter((f) => /^(src|test|scripts|bench|clients|docs|data)\//.test(f) || f.endsWith('.map'))
    assert.deepEqual(extra, [], 'the package holds only what a user needs')

    const app = join(work, 'app')
    execFileSync('mkdir', ['-p', app])
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({
        name: 'app',
        version: '1.0.0',
        type: 'module',
        private: true,
        // npm 11.16+ lists unreviewed install scripts, npm 12 skips them: the native addons are approved.
        allowScripts: { 'better-sqlite3': true, zeromq: true },
      }),
    )
    // Install scripts compile better-sqlite3 from source (minutes on a small machine). Unless asked for that
    // (SWITCHBOARD_PACK_TEST_BUILD=1), install without scripts and give it the addon this checkout built for the
    // same version and the same Node: what is under test is our package, not better-sqlite3's build.
    const build = process.env.SWITCHBOARD_PACK_TEST_BUILD === '1'
    npm(['install', '--omit=dev', ...(build ? [] : ['--ignore-scripts']), join(work, packed!.filename)], app)
    if (!build) {
      for (const dep of ['better-sqlite3', 'better-sqlite3-napi']) {
        const mine = join(ROOT, 'node_modules', dep)
        const theirs = join(app, 'node_modules', dep)
        if (!existsSync(join(mine, 'build')) || !existsSync(theirs)) continue
        const version = (dir: string): string =>
          (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version
        assert.equal(version(theirs), version(mine), `the installed ${dep} is the version this checkout built`)
        cpSync(join(mine, 'build'), join(theirs, 'build'), { recursive: true })
      }
    }
    const installed = JSON.parse(readFileSync(join(app, 'node_modules', 'switchboard', 'package.json'), 'utf8')) as {
      version: string
    }
    assert.equal(installed.version, '0.1.0')
    assert.throws(() => require.resolve('tsx', { paths: [app] }), 'tsx (a devDependency) is not installed')

    // The SDK and an embedded server, with plain Node.
    writeFileSync(join(app, 'app.mjs'), APP)
    const out = JSON.parse(execFileSync(process.execPath, ['app.mjs'], { cwd: app, encoding: 'utf8', timeout: 60_000 })) as {
      version: string
      text: string
      loader: string[]
    }
    assert.deepEqual(out, { version: '0.1.0', text: 'hello from an installed package', loader: [] })

    // The declaration files, as a TypeScript consumer sees them (nodenext resolution through `exports`).
    writeFileSync(join(app, 'typed.ts'), TYPED_APP)
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          strict: true,
          noEmit: true,
          types: [],
          skipLibCheck: false,
          lib: ['es2023', 'dom'],
        },
        files: ['typed.ts'],
      }),
    )
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
    // @types/node is a devDependency of ours, not the app's: point the checker at it.
    execFileSync(
      process.execPath,
      [tsc, '-p', 'tsconfig.json', '--typeRoots', join(ROOT, 'node_modules', '@types'), '--types', 'node'],
      {
        cwd: app,
        encoding: 'utf8',
      },
    )

    // The command: compiled output, the web page served, one SIGTERM stops it.
    const bin = join(app, 'node_modules', '.bin', 'switchboard')
    const server = spawn(
      bin,
      ['serve', '--port', '0', '--http-port', '0', '--data-dir', join(work, 'data'), '--log-format', 'json'],
      {
        cwd: app,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    t.after(() => server.kill('SIGKILL'))
    let stdout = ''
    let logs = ''
    server.stderr.on('data', (d: Buffer) => (logs += d.toString()))
    const httpPort = await new Promise<number>((resolve, reject) => {
      server.stdout.on('data', (d: Buffer) => {
        stdout += d.toString()
        const m = /http\s+listening on http:\/\/[^\s:]+:(\d+)/.exec(stdout)
        if (m !== null) resolve(Number(m[1]))
      })
      server.once('exit', (code) => reject(new Error(`switchboard exited (${String(code)}) before listening:\n${stdout}`)))
    })
    const page = await fetch(`http://127.0.0.1:${httpPort}/`)
    assert.equal(page.status, 200)
    assert.match(await page.text(), /<html/i)
    const exited = new Promise<number | null>((resolve) => server.once('exit', resolve))
    server.kill('SIGTERM')
    assert.equal(await exited, 0)
    // The command's own node options (its first line): the young generation the server is meant to run with.
    const started = logs
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg?: string; semiSpaceMiB?: unknown })
      .find((l) => l.msg === 'switchboard started')
    assert.equal(started?.semiSpaceMiB, 32, `the started line in\n${logs}`)

    // Cluster mode without its optional packages: a clear error, not "Cannot find package".
    rmSync(join(app, 'node_modules', 'pg'), { recursive: true, force: true })
    let failed: { status: number | null; stderr: string } | undefined
    try {
      execFileSync(bin, ['serve', '--store', 'postgres://127.0.0.1:1/none', '--port', '0', '--http-port', '-1'], {
        cwd: app,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 30_000,
      })
    } catch (err) {
      failed = err as { status: number | null; stderr: string }
    }
    assert.ok(failed !== undefined, 'serve --store postgres:// without pg fails')
    assert.equal(failed.status, 1)
    assert.match(failed.stderr, /needs the npm package pg, which is not installed \(npm install pg\)/)
  },
)
