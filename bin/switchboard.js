#!/usr/bin/env -S node --max-semi-space-size=32
// (A young generation of 2 × 32 MiB: the server's garbage collection under load is about half of V8's default 16
// MiB's, docs/BENCHMARKS.md Run L. `npm start` passes the same; `node bin/switchboard.js serve` runs without it.)
// Entry point of the `switchboard` command. It runs the compiled output (dist/, built by `npm run build`,
// by `npm start`'s prestart when missing or stale, and shipped in the package). In a clone whose dist/ is
// missing or older than src/ (a developer between builds, the tests), it runs the TypeScript sources
// through tsx instead (a devDependency), so what runs is always what the sources say.
// SWITCHBOARD_DIST=1 insists on dist/ (an error if it is stale); SWITCHBOARD_DIST=0 insists on the sources.
import { existsSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { dirname, join } from 'node:path'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const dist = join(root, 'dist', 'bin', 'switchboard.js')
const src = join(root, 'src', 'bin', 'switchboard.ts')
const want = process.env.SWITCHBOARD_DIST

let useDist = existsSync(dist) && want !== '0'
if (useDist && want !== '1' && existsSync(src)) {
  const { serverStale } = await import(pathToFileURL(join(root, 'scripts', 'build-state.mjs')).href)
  useDist = !serverStale(root)
}
if (useDist) {
  await import(pathToFileURL(dist).href)
} else if (existsSync(src) && want !== '1') {
  const { register } = await import('tsx/esm/api')
  register()
  await import(pathToFileURL(src).href)
} else {
  process.stderr.write(`switchboard: ${dist} is missing or stale: run npm run build\n`)
  process.exit(1)
}
