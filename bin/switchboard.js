#!/usr/bin/env node
// Entry point of the `switchboard` command. It runs the TypeScript sources through tsx, so a fresh clone
// works without a build step; with SWITCHBOARD_DIST=1 it runs the output of `npm run build` instead.
import { fileURLToPath, pathToFileURL } from 'node:url'
import { dirname, join } from 'node:path'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
if (process.env.SWITCHBOARD_DIST === '1') {
  await import(pathToFileURL(join(root, 'dist', 'bin', 'switchboard.js')).href)
} else {
  const { register } = await import('tsx/esm/api')
  register()
  await import(pathToFileURL(join(root, 'src', 'bin', 'switchboard.ts')).href)
}
