import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { buildProtocolDoc } from '../../scripts/build-protocol-doc.js'

test('docs/PROTOCOL.md is generated from docs/protocol/*.md and up to date', () => {
  const committed = readFileSync(new URL('../../docs/PROTOCOL.md', import.meta.url), 'utf8')
  assert.ok(committed === buildProtocolDoc(), 'docs/PROTOCOL.md is stale: run node --import tsx scripts/build-protocol-doc.ts')
})
