// Runs every test file under the given folders (default: test/ and clients/*/test-ts) with node:test.
// Node 20 does not discover .ts files by itself, so this lists them.
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'

function collect(dir: string, out: string[]): void {
  let entries: string[]
  try {
    entries = readdirSync(dir)
  } catch {
    return
  }
  for (const name of entries.sort()) {
    if (name === 'node_modules' || name.startsWith('.')) continue
    const path = join(dir, name)
    if (statSync(path).isDirectory()) collect(path, out)
    else if (name.endsWith('.test.ts')) out.push(path)
  }
}

const args = process.argv.slice(2)
const filters = args.filter((a) => !a.startsWith('--'))
const roots = filters.length > 0 ? filters : ['test']
const files: string[] = []
for (const root of roots) {
  if (root.endsWith('.test.ts')) files.push(root)
  else collect(root, files)
}
if (files.length === 0) {
  console.error(`no test files under ${roots.join(', ')}`)
  process.exit(1)
}
const concurrency = process.env.TEST_CONCURRENCY ?? '2'
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files],
  { stdio: 'inherit' },
)
process.exit(result.status ?? 1)
