import { test } from 'node:test'
import assert from 'node:assert/strict'
import { runSteps, ShutdownIncomplete } from '../../src/shutdown.js'

test('runSteps runs steps in order, abandons one that overruns its budget, and goes on', async () => {
  const order: string[] = []
  let release: () => void = () => {}
  const report = await runSteps(
    [
      { name: 'a', run: () => void order.push('a') },
      { name: 'hangs', run: () => new Promise<void>((r) => (release = r)), timeoutMs: 50 },
      { name: 'fails', run: () => Promise.reject(new Error('no')) },
      { name: 'b', run: async () => void order.push('b') },
    ],
    { timeoutMs: 5000 },
  )
  release()
  assert.deepEqual(order, ['a', 'b'])
  assert.equal(report.ok, false)
  assert.deepEqual(
    report.steps.map((s) => [s.name, s.status]),
    [
      ['a', 'done'],
      ['hangs', 'abandoned'],
      ['fails', 'failed'],
      ['b', 'done'],
    ],
  )
  assert.ok(report.steps[1]!.ms >= 50)
  const err = new ShutdownIncomplete(report)
  assert.deepEqual(
    err.unfinished.map((s) => s.name),
    ['hangs', 'fails'],
  )
  assert.match(err.message, /^shutdown incomplete: hangs \(abandoned after \d+ ms\), fails \(failed after \d+ ms\)$/)
})

test('runSteps: a step that throws synchronously is a failed step, not a thrown runner', async () => {
  const report = await runSteps(
    [
      {
        name: 'throws',
        run: () => {
          throw new Error('sync')
        },
      },
    ],
    { timeoutMs: 100 },
  )
  assert.deepEqual(
    report.steps.map((s) => s.status),
    ['failed'],
  )
})
