// clients/python's own unittest suite (vectors + live against a server it starts), run by the project's test command.
import assert from 'node:assert/strict'
import path from 'node:path'
import { test } from 'node:test'
import { CLIENTS, missing, run } from './harness.js'

const skip = missing('python3')

test('python client: unittest (codec vs every native vector, live server)', { skip, timeout: 180_000 }, () => {
  const r = run('python3', ['-m', 'unittest', '-v'], { cwd: path.join(CLIENTS, 'python') })
  assert.match(r.stderr, /\nOK\b/)
  assert.match(r.stderr, /test_parse/)
  assert.match(r.stderr, /test_register_send_receipt_resume_offline_and_poll/)
})
