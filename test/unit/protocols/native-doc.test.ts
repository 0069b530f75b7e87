// docs/protocol/native.md and the FRAMES table agree: every frame is in the doc's table with its code,
// direction and fields in wire order, and the doc lists no frame the code does not have.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import {
  ConvAction,
  ConvEventCode,
  FRAMES,
  Op,
  SendFlag,
  SendStatusCode,
  type FrameName,
} from '../../../src/protocols/native/frames.js'
import { ReceiptStatus } from '../../../src/core/types.js'

const doc = readFileSync(new URL('../../../docs/protocol/native.md', import.meta.url), 'utf8')

/** Rows of the §4 table: | 0x01 | REGISTER | c→s | `version:u16` `flags:u8` … | answered by | */
function tableRows(): Map<string, { code: number; dir: string; fields: string[] }> {
  const out = new Map<string, { code: number; dir: string; fields: string[] }>()
  for (const line of doc.split('\n')) {
    const m = /^\|\s*0x([0-9a-f]{2})\s*\|\s*([A-Z_]+)\s*\|\s*(c→s|s→c)\s*\|([^|]*)\|/.exec(line)
    if (!m) continue
    const fields = [...m[4]!.matchAll(/`([a-zA-Z0-9]+:[a-z0-9]+)`/g)].map((x) => x[1]!)
    out.set(m[2]!, { code: parseInt(m[1]!, 16), dir: m[3] === 'c→s' ? 'c2s' : 's2c', fields })
  }
  return out
}

test('every frame of FRAMES is in the doc table with its code, direction and fields in order', () => {
  const rows = tableRows()
  for (const name of Object.keys(FRAMES) as FrameName[]) {
    const spec = FRAMES[name]
    const row = rows.get(name)
    assert.ok(row, `${name} is in the table`)
    assert.equal(row.code, spec.code, `${name} code`)
    assert.equal(row.dir, spec.dir, `${name} direction`)
    assert.deepEqual(
      row.fields,
      spec.fields.map(([f, t]) => `${f}:${t}`),
      `${name} fields`,
    )
  }
  const extra = [...rows.keys()].filter((n) => !(n in FRAMES))
  assert.deepEqual(extra, [], 'the doc lists no frame the code lacks')
})

test('the doc gives every REQUEST op, ACCEPTED status, conversation action and event its code', () => {
  const row = (code: number, name: string): RegExp => new RegExp(`^\\|\\s*${code}\\s*\\|\\s*\`${name}\``, 'm')
  for (const [name, code] of Object.entries(Op)) assert.match(doc, row(code, name), `Op ${name}`)
  for (const [name, code] of Object.entries(SendStatusCode)) assert.match(doc, row(code, name), `status ${name}`)
  for (const [name, code] of Object.entries(ConvAction)) assert.match(doc, row(code, name), `action ${name}`)
  for (const [name, code] of Object.entries(SendFlag))
    assert.match(doc, new RegExp(`\\|\\s*${code}\\s*\\|\\s*\`${name}\``), `flag ${name}`)
  for (const [name, code] of Object.entries(ConvEventCode)) assert.ok(doc.includes(`${code} \`${name}\``), `event ${name}`)
  for (const [name, code] of Object.entries(ReceiptStatus)) assert.match(doc, row(code, name), `receipt ${name}`)
})
