import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { OPTIONS, OPTION_GROUPS, envName, resolveConfig } from '../../src/config.js'

test('precedence: flag over environment over config file over default', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-cfg-'))
  try {
    const file = join(dir, 'switchboard.json')
    writeFileSync(file, JSON.stringify({ port: 1111, 'http-port': 2222, maxTextBytes: 3333, host: '10.0.0.1' }))
    const c = resolveConfig(
      { config: file, port: '4444' },
      { SWITCHBOARD_PORT: '5555', SWITCHBOARD_HTTP_PORT: '6666', SWITCHBOARD_LEGACY: 'yes' },
    )
    assert.equal(c.port, 4444, 'the flag wins')
    assert.equal(c['http-port'], 6666, 'then the environment')
    assert.equal(c['max-text-bytes'], 3333, 'then the file (camelCase keys work)')
    assert.equal(c.host, '10.0.0.1', 'kebab-case and plain keys too')
    assert.equal(c['ack-timeout'], 3000, 'then the default')
    assert.equal(c.legacy, true)
    assert.equal(c['p002-port'], 9000, '--legacy turns every gateway on at its original port')
    assert.equal(c['p004-port'], 55555)
    assert.equal(c['zmq-pub-port'], 5556)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('bad values are refused with the option named', () => {
  assert.throws(() => resolveConfig({ port: 'eighty' }, {}), /--port: port must be a whole number, not "eighty"/)
  assert.throws(() => resolveConfig({}, { SWITCHBOARD_LEGACY: 'maybe' }), /SWITCHBOARD_LEGACY: legacy must be true or false/)
})

test('the defaults are loopback and the embedded store', () => {
  const c = resolveConfig({}, {})
  assert.equal(c.host, '127.0.0.1')
  assert.equal(c.store, 'sqlite')
  assert.equal(c.bus, 'local')
  assert.equal(c['max-name-bytes'], 25)
  assert.equal(c['p001-port'], undefined, 'gateways are off unless enabled')
})

test('serve --help lists every option with its default and its environment variable', () => {
  // commander wraps the help at the terminal's width: compare with the white space folded
  const out = execFileSync(process.execPath, ['bin/switchboard.js', 'serve', '--help'], { encoding: 'utf8' }).replace(/\s+/g, ' ')
  for (const o of OPTIONS) {
    assert.ok(out.includes(`--${o.name}`), `--${o.name} in --help`)
    assert.ok(out.includes(envName(o.name)), `${envName(o.name)} in --help`)
    if (o.default !== undefined && o.default !== '')
      assert.ok(out.includes(`default: ${String(o.default)}`), `default of --${o.name}`)
  }
  // Each plugin's options under its own heading (src/protocols/registry.ts): native, HTTP, the gateways.
  for (const g of OPTION_GROUPS) assert.ok(out.includes(`${g.title}:`), `the "${g.title}" section`)
  assert.ok(OPTION_GROUPS.length > 6, 'the server and every gateway')
})

test('a duration option takes ms or a unit; anything else is refused naming the option', () => {
  assert.equal(resolveConfig({}, {})['retention'], 30 * 24 * 3600_000, 'default 30 days')
  assert.equal(resolveConfig({ retention: '30d' }, {})['retention'], 30 * 24 * 3600_000)
  assert.equal(resolveConfig({ retention: '90s' }, {})['retention'], 90_000)
  assert.equal(resolveConfig({ retention: '1_500' }, {})['retention'], 1500)
  assert.equal(resolveConfig({}, { SWITCHBOARD_RETENTION: '12h' })['retention'], 12 * 3600_000)
  assert.throws(() => resolveConfig({ retention: 'soon' }, {}), /--retention: retention must be a duration/)
  assert.throws(() => resolveConfig({ retention: '-5s' }, {}), /--retention: retention must be a duration/)
})
