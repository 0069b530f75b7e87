// Builds what `switchboard serve` runs: the server and SDK (tsc → dist/, with declaration files) and the
// web page (vite → web/dist/). `--if-stale` builds only what is missing or older than its sources: it is
// `npm start`'s prestart, so a start after a start builds nothing.
import { spawnSync } from 'node:child_process'
import { readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SERVER_STAMP, serverStale, webStale } from './build-state.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const ifStale = process.argv.includes('--if-stale')

function run(what, args) {
  process.stderr.write(`building ${what}\n`)
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' })
  if (r.status !== 0) {
    process.stderr.write(`switchboard: building ${what} failed\n`)
    process.exit(r.status ?? 1)
  }
}

const require = createRequire(import.meta.url)
/** The path of a package's command (from its package.json's bin), run with this Node. */
function bin(pkg, name) {
  const manifest = require.resolve(`${pkg}/package.json`)
  const { bin: b } = JSON.parse(readFileSync(manifest, 'utf8'))
  return join(dirname(manifest), typeof b === 'string' ? b : b[name])
}

if (!ifStale || serverStale(root)) {
  const started = Date.now()
  rmSync(join(root, 'dist'), { recursive: true, force: true })
  run('the server (dist/)', [bin('typescript', 'tsc'), '-p', 'tsconfig.build.json'])
  // Stamped with the time the compile started: a source saved during the compile makes the output stale.
  const stamp = join(root, SERVER_STAMP)
  writeFileSync(stamp, `built ${new Date(started).toISOString()}\n`)
  utimesSync(stamp, started / 1000, started / 1000)
}
if (!ifStale || webStale(root)) {
  run('the web page (web/dist/)', [bin('vite', 'vite'), 'build', '--config', 'web/vite.config.ts', '--logLevel', 'warn'])
}
