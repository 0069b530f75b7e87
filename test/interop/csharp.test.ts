// clients/csharp built with Mono's mcs (build.sh), then its test runner (vectors + live), run by the project's test command.
import assert from 'node:assert/strict'
import path from 'node:path'
import { test } from 'node:test'
import { CLIENTS, ROOT, buildCsharp, missing, run } from './harness.js'

const skip = missing('mcs', 'mono')

test('c# client: mcs build and tests (vectors, live)', { skip, timeout: 300_000 }, () => {
  const build = buildCsharp()
  const r = run('mono', [path.join(build, 'Switchboard.Tests.exe'), 'all'], {
    env: { SB_REPO_ROOT: ROOT },
    cwd: path.join(CLIENTS, 'csharp'),
  })
  assert.match(r.stdout, /vectors: \d+ frames, \d+ invalid inputs/)
  assert.match(r.stdout, /live: done/)
  assert.match(r.stdout, /\d+ checks, all passed/)
})
