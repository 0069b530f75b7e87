// clients/cgi's test: the CGI program behind a real lighttpd (mod_cgi) and a real server, over HTTP.
import assert from 'node:assert/strict'
import path from 'node:path'
import { test } from 'node:test'
import { CLIENTS, missing, run } from './harness.js'

const skip = missing('python3', 'lighttpd')

test('cgi chat behind lighttpd: log in, cookie, inbox, send, receipt', { skip, timeout: 180_000 }, () => {
  const r = run('python3', ['-m', 'unittest', '-v'], { cwd: path.join(CLIENTS, 'cgi') })
  assert.match(r.stderr, /test_login_inbox_send_receipt_rename_logout \S+ \.\.\. ok/)
  assert.match(r.stderr, /\nOK\b/)
})
