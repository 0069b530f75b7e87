import { test } from 'node:test'
import assert from 'node:assert/strict'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LogOutput, logStats, makeLogger } from '../../src/log.js'

test('a full disk (/dev/full): every line is dropped and counted, nothing throws, nothing waits', () => {
  const fd = openSync('/dev/full', 'w')
  try {
    const before = logStats.dropped
    const out = new LogOutput(fd)
    for (let i = 0; i < 3; i++) out.write(`{"msg":"line ${i}"}\n`)
    assert.equal(logStats.dropped - before, 3)
  } finally {
    closeSync(fd)
  }
})

test('JSON and pretty records reach a file', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-log-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  for (const format of ['json', 'pretty']) {
    const path = join(dir, `${format}.log`)
    const fd = openSync(path, 'w')
    const { log } = makeLogger('info', format, fd)
    log.info({ user: 7 }, 'hello')
    log.debug({}, 'not at info')
    closeSync(fd)
    const text = readFileSync(path, 'utf8')
    assert.match(text, /hello/)
    assert.doesNotMatch(text, /not at info/)
    if (format === 'json') assert.equal((JSON.parse(text) as { user: number }).user, 7)
    else assert.match(text, /INFO.*hello/)
  }
})
