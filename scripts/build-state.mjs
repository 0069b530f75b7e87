// Whether the compiled output is older than its sources (plain JavaScript: bin/switchboard.js and
// scripts/build.mjs use it before anything is compiled). dist/ is stamped after each successful compile.
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

/** Newest modification time (ms) of the files under `path` (a file or a folder), skipping `skip` folders. */
export function newest(path, skip = []) {
  let st
  try {
    st = statSync(path)
  } catch {
    return 0
  }
  if (!st.isDirectory()) return st.mtimeMs
  let max = 0
  for (const e of readdirSync(path, { withFileTypes: true })) {
    if (skip.includes(e.name)) continue
    max = Math.max(max, newest(join(path, e.name), skip))
  }
  return max
}

function mtime(path) {
  try {
    return statSync(path).mtimeMs
  } catch {
    return 0
  }
}

export const SERVER_STAMP = join('dist', '.built')
export const WEB_STAMP = join('web', 'dist', 'index.html')

/** The server's compiled output (dist/) is missing or older than src/ or the compiler settings. */
export function serverStale(root) {
  const built = mtime(join(root, SERVER_STAMP))
  const inputs = Math.max(newest(join(root, 'src')), mtime(join(root, 'tsconfig.json')), mtime(join(root, 'tsconfig.build.json')))
  return built === 0 || inputs > built
}

/** The web page's bundle (web/dist/) is missing or older than web/ or the SDK it bundles. */
export function webStale(root) {
  const built = mtime(join(root, WEB_STAMP))
  const inputs = Math.max(newest(join(root, 'web'), ['dist', 'node_modules']), newest(join(root, 'src', 'client')))
  return built === 0 || inputs > built
}
