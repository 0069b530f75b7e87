/**
 * The young generation the server runs with (src/cli/young-generation.ts) is a node option written in places that
 * cannot import it: the command's first line and npm start. They say the same size; the start line parses it.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { SEMI_SPACE_MIB, SEMI_SPACE_OPTION, semiSpaceFlag } from '../../src/cli/young-generation.js'

const read = (path: string): string => readFileSync(fileURLToPath(new URL(`../../${path}`, import.meta.url)), 'utf8')

test('the command, npm start and the value agree on the semi-space', () => {
  assert.equal(read('bin/switchboard.js').split('\n')[0], `#!/usr/bin/env -S node ${SEMI_SPACE_OPTION}`)
  const pkg = JSON.parse(read('package.json')) as { scripts: { start: string } }
  assert.equal(pkg.scripts.start, `exec node ${SEMI_SPACE_OPTION} bin/switchboard.js serve`)
})

test('semiSpaceFlag reads the option from node options or NODE_OPTIONS, the last one winning', () => {
  assert.equal(semiSpaceFlag([SEMI_SPACE_OPTION]), SEMI_SPACE_MIB)
  assert.equal(semiSpaceFlag(['--max_semi_space_size', '64']), 64)
  assert.equal(semiSpaceFlag(['--max-semi-space-size=16'], '--max-semi-space-size=48'), 48)
  assert.equal(semiSpaceFlag(['--max-old-space-size=4096'], ''), undefined)
  assert.equal(semiSpaceFlag([], '--max-semi-space-size'), undefined)
})
