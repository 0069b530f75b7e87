// clients/cpp built with CMake, then its CTest suite (vectors + live), run by the project's test command.
import assert from 'node:assert/strict'
import path from 'node:path'
import { test } from 'node:test'
import { CLIENTS, buildCpp, missing, run } from './harness.js'

const skip = missing('g++', 'cmake', 'ctest')

test('c++ client: cmake build and ctest (vectors, live)', { skip, timeout: 600_000 }, () => {
  const build = buildCpp()
  const r = run('ctest', ['--output-on-failure'], { cwd: build })
  assert.match(r.stdout, /100% tests passed, 0 tests failed out of 2/)
  assert.match(r.stdout, /vectors \.+\s+Passed/)
  assert.match(r.stdout, /live \.+\s+Passed/)
})

test('c++ client: the plain Makefile builds too', { skip: skip ?? missing('make'), timeout: 600_000 }, () => {
  const dir = path.join(CLIENTS, 'cpp')
  // -O0: this only proves the Makefile works; the optimised build is CMake's
  run('make', ['-C', dir, '-j2', 'CXXFLAGS=-std=c++17 -O0 -Wall -Wextra -Iinclude -pthread', 'build-make/test_vectors'])
  const r = run(path.join(dir, 'build-make', 'test_vectors'), [])
  assert.match(r.stdout, /frame vectors, \d+ invalid inputs: ok/)
})
