// The error registry and docs/errors.md agree (fastify's check): every code is documented with its number and
// HTTP status, nothing documented is missing from the registry, and the numbers are unique.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { ErrorCodes, ErrorNumbers, errorCodeFromNumber, type ErrorCode } from '../../src/core/errors.js'

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8')
const codes = Object.keys(ErrorCodes) as ErrorCode[]

/** The table rows of docs/errors.md by code: | `CODE` | number | status | meaning | … */
function rows(): Map<string, { number: number; status: number; meaning: string }> {
  const out = new Map<string, { number: number; status: number; meaning: string }>()
  for (const line of doc.split('\n')) {
    const m = /^\|\s*`(SB_ERR_[A-Z_]+)`\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|([^|]*)\|/.exec(line)
    if (m) out.set(m[1]!, { number: Number(m[2]), status: Number(m[3]), meaning: m[4]!.trim() })
  }
  return out
}

test('every error code in src/core/errors.ts appears in docs/errors.md', () => {
  const missing = codes.filter((c) => !doc.includes(`\`${c}\``))
  assert.deepEqual(missing, [], `undocumented codes: ${missing.join(', ')}`)
})

test('docs/errors.md gives each code its number and HTTP status, and a meaning', () => {
  const table = rows()
  for (const c of codes) {
    const row = table.get(c)
    assert.ok(row, `${c} has a table row`)
    assert.equal(row.number, ErrorNumbers[c], `${c} number`)
    assert.equal(row.status, ErrorCodes[c].status, `${c} HTTP status`)
    assert.ok(row.meaning.length > 10, `${c} meaning`)
  }
  const unknown = [...table.keys()].filter((c) => !(c in ErrorCodes))
  assert.deepEqual(unknown, [], `documented codes that do not exist: ${unknown.join(', ')}`)
})

test('error numbers are unique, and map back to their codes', () => {
  const nums = codes.map((c) => ErrorNumbers[c])
  assert.equal(new Set(nums).size, nums.length)
  for (const c of codes) assert.equal(errorCodeFromNumber(ErrorNumbers[c]), c)
  assert.equal(errorCodeFromNumber(0xffff), 'SB_ERR_INTERNAL')
})
