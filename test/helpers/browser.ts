/**
 * Debian's Chromium driven by playwright-core, for the tests of the web page and the dashboard, and the
 * build of web/dist they need. Without /usr/bin/chromium the tests are skipped on a laptop
 * (scripts/install-chromium.sh installs it); under CI=true that is a failure.
 */
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { chromium, type Browser } from 'playwright-core'

export const ROOT = resolve(import.meta.dirname, '../..')
const WEB = join(ROOT, 'web')
export const DIST = join(WEB, 'dist')
export const ARTIFACTS = join(ROOT, 'test-artifacts')
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const CI = process.env.CI === 'true'

/** The `skip` option of a browser test: a reason without Chromium (outside CI), else false. */
export const skipWithoutChromium =
  !existsSync(CHROMIUM) && !CI ? `no Chromium at ${CHROMIUM}: run scripts/install-chromium.sh (or set CHROMIUM_PATH)` : false

function newest(path: string): number {
  if (!existsSync(path)) return 0
  const st = statSync(path)
  if (!st.isDirectory()) return st.mtimeMs
  let t = 0
  for (const e of readdirSync(path)) t = Math.max(t, newest(join(path, e)))
  return t
}

/** Build web/dist (the chat and the dashboard) when it is missing or older than its sources. */
export function ensureWebBuilt(): void {
  const outputs = [join(DIST, 'index.html'), join(DIST, 'admin', 'index.html')]
  const sources = Math.max(...['src', 'admin', 'public', 'index.html', 'vite.config.ts'].map((p) => newest(join(WEB, p))))
  if (outputs.every((o) => existsSync(o) && statSync(o).mtimeMs >= sources)) return
  execFileSync(
    process.execPath,
    [join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--config', join(WEB, 'vite.config.ts')],
    { cwd: ROOT, stdio: 'pipe' },
  )
  for (const o of outputs) assert.ok(existsSync(o), `the web build did not produce ${o}`)
}

/** A headless Chromium, closed when the test ends; test-artifacts/ exists for its screenshots. */
export async function launchChromium(t: TestContext): Promise<Browser> {
  assert.ok(existsSync(CHROMIUM), `CI=true but there is no Chromium at ${CHROMIUM}: .ci/run must run scripts/install-chromium.sh`)
  mkdirSync(ARTIFACTS, { recursive: true })
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
  t.after(() => browser.close())
  return browser
}
