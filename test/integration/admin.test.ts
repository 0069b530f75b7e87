/**
 * The operator's dashboard (issue 14, item 13) against a real server with --admin-token: the page and its
 * data are refused without the token (401, a Basic challenge), with a wrong one, and when the server has no
 * token at all (404); with it, real Chromium shows who is online over which protocol, the largest queue,
 * the gateways and their connections, and charts that fill as it refreshes while native clients send.
 * Screenshot: test-artifacts/admin-dashboard.png.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { SwitchboardClient } from '../../src/client/client.js'
import { ARTIFACTS, ensureWebBuilt, launchChromium, skipWithoutChromium } from '../helpers/browser.js'
import { startTestServer } from '../helpers/server.js'

const TOKEN = 'op-7f3a9c1e-secret'

/**
 * A number on the page, as an expression Chromium evaluates (a string: the root tsconfig has no DOM types):
 * an element's attribute, or its text.
 */
const num = (selector: string, attr?: string): string =>
  `Number(document.querySelector(${JSON.stringify(selector)})?.${attr ? `getAttribute(${JSON.stringify(attr)})` : 'textContent'})`

test('admin: without --admin-token there is no dashboard (404)', async (t) => {
  const { server } = await startTestServer(t, { httpPort: 0 })
  const base = `http://127.0.0.1:${server.port('http')}`
  for (const path of ['/admin', '/admin/metrics.json']) {
    const r = await fetch(base + path, { headers: { authorization: `Bearer ${TOKEN}` } })
    assert.equal(r.status, 404, path)
  }
  // and the built page is not a static file either
  assert.equal((await fetch(`${base}/admin/index.html`)).status, 404)
})

test('admin: the dashboard and its data need the token', async (t) => {
  ensureWebBuilt()
  const { server } = await startTestServer(t, { httpPort: 0, adminToken: TOKEN })
  const base = `http://127.0.0.1:${server.port('http')}`
  const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`
  // the built page's file is no static file: only /admin serves it
  assert.equal((await fetch(`${base}/admin/index.html`)).status, 404)
  for (const path of ['/admin', '/admin/', '/admin/metrics.json']) {
    const none = await fetch(base + path)
    assert.equal(none.status, 401, `${path} without a token`)
    assert.match(none.headers.get('www-authenticate') ?? '', /^Basic realm="Switchboard admin"/)
    const body = await none.text()
    assert.doesNotMatch(body, /<script/, 'nothing of the page without the token')
    for (const auth of [`Bearer wrong`, basic('admin', 'wrong'), basic(TOKEN, ''), `Bearer ${TOKEN}x`]) {
      assert.equal((await fetch(base + path, { headers: { authorization: auth } })).status, 401, `${path} with ${auth}`)
    }
  }
  const ok = await fetch(`${base}/admin/metrics.json`, { headers: { authorization: `Bearer ${TOKEN}` } })
  assert.equal(ok.status, 200)
  const snap = (await ok.json()) as { metrics: { name: string }[]; gateways: { name: string }[] }
  assert.ok(
    snap.metrics.some((m) => m.name === 'switchboard_messages_in_total'),
    'the /metrics registry, as JSON',
  )
  assert.deepEqual(snap.gateways.map((g) => g.name).sort(), ['http', 'native'])
  const page = await fetch(`${base}/admin`, { headers: { authorization: basic('anyone', TOKEN) } })
  assert.equal(page.status, 200)
  assert.match(await page.text(), /<div id="admin">/)
  // The same figures reach /metrics: one gauge per gateway.
  assert.match(await (await fetch(`${base}/metrics`)).text(), /switchboard_gateway_connections\{gateway="native"\} \d+/)
  // The OpenAPI document names both routes with their security.
  const doc = (await (await fetch(`${base}/openapi.json`)).json()) as {
    paths: Record<string, Record<string, { security?: unknown[] }>>
  }
  assert.ok(doc.paths['/admin/metrics.json']?.get?.security?.length, 'the data route is documented with its token')
  assert.ok(doc.paths['/v1/limits']?.get, 'the limits route is documented')
})

test(
  'admin: the dashboard in Chromium shows sessions, queues, gateways and live charts',
  { skip: skipWithoutChromium, timeout: 120_000 },
  async (t) => {
    ensureWebBuilt()
    const { server, port } = await startTestServer(t, { httpPort: 0, adminToken: TOKEN, ackTimeout: 500 })
    const base = `http://127.0.0.1:${server.port('http')}`
    const browser = await launchChromium(t)

    // Without credentials the browser gets the 401 and no dashboard.
    const anon = await browser.newContext()
    // (Headless Chromium has nobody to ask, so it gives up on the challenge with ERR_INVALID_AUTH_CREDENTIALS.)
    const anonPage = await anon.newPage()
    await assert.rejects(anonPage.goto(`${base}/admin`), /ERR_INVALID_AUTH_CREDENTIALS/)
    assert.equal(await anonPage.getByTestId('dashboard').count(), 0)
    const wrong = await browser.newContext({ httpCredentials: { username: 'operator', password: 'guess' } })
    const wrongPage = await wrong.newPage()
    assert.equal((await wrongPage.goto(`${base}/admin`))?.status(), 401, 'a wrong token is refused')
    assert.equal(await wrongPage.getByTestId('dashboard').count(), 0)

    // Native clients: carol sends, gina does not acknowledge (her queue grows); erin is on HTTP.
    const carol = await SwitchboardClient.connect({ host: '127.0.0.1', port, name: 'carol' })
    const gina = await SwitchboardClient.connect({ host: '127.0.0.1', port, name: 'gina', autoAck: false })
    t.after(async () => {
      await carol.close()
      await gina.close()
    })
    const erin = (await (
      await fetch(`${base}/v1/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"name":"erin"}',
      })
    ).json()) as { token: string }
    assert.ok(erin.token)

    const ctx = await browser.newContext({
      // The checks below evaluate strings in the page, which its CSP (no 'unsafe-eval') forbids: let the test's own
      // scripts through (the dashboard's CSP is not what this test checks; web.test.ts checks the chat page's).
      bypassCSP: true,
      viewport: { width: 1200, height: 900 },
      httpCredentials: { username: 'operator', password: TOKEN },
    })
    const page = await ctx.newPage()
    const errors: string[] = []
    page.on('pageerror', (e) => errors.push(e.message))
    const res = await page.goto(`${base}/admin?interval=300`)
    assert.equal(res?.status(), 200)
    await page.getByTestId('dashboard').waitFor()
    await page.waitForFunction(`${num('[data-testid="dashboard"]', 'data-updates')} >= 2`)

    // who is online, over which protocol
    const row = (name: string) => page.locator(`[data-testid="online-row"][data-name="${name}"]`)
    await row('carol').waitFor()
    assert.match((await row('carol').textContent()) ?? '', /native/)
    assert.match((await row('erin').textContent()) ?? '', /http/)
    assert.match((await row('gina').textContent()) ?? '', /native/)
    assert.equal(await page.getByTestId('value-online').textContent(), '3')

    // gateways and their connections
    const gw = (name: string) => page.locator(`[data-testid="gateway-row"][data-name="${name}"] td.num`)
    await page.waitForFunction(`${num('[data-testid="gateway-row"][data-name="native"] td.num')} >= 2`)
    assert.ok(Number(await gw('http').textContent()) >= 1, 'the dashboard itself is on the HTTP gateway')

    // traffic: twenty messages to gina, who does not acknowledge them; the rate and her queue show up
    const sends = Array.from({ length: 20 }, (_, i) => carol.send({ kind: 'name', name: 'gina' }, `message ${i}`))
    await page.waitForFunction(`${num('[data-testid="value-in"]')} > 0`, undefined, {
      timeout: 15_000,
    })
    await page.locator('[data-testid="queue-row"][data-name="gina"]').waitFor()
    await page.waitForFunction(`${num('[data-testid="queue-row"][data-name="gina"] td.num')} === 20`, undefined, {
      timeout: 15_000,
    })
    assert.equal(await page.getByTestId('value-depth').textContent(), '20')
    // store commits: a mean latency and batch size were charted for an interval with commits
    await page.waitForFunction(`${num('[data-testid="chart-commit"]', 'data-values')} >= 1`, undefined, { timeout: 15_000 })
    assert.match((await page.getByTestId('value-commit').textContent()) ?? '', /^\d+(\.\d+)? ms$/)

    // the charts fill as the page refreshes: uPlot draws into a canvas and the point count grows
    const points = async (): Promise<number> => Number(await page.getByTestId('chart-rates').getAttribute('data-points'))
    const before = await points()
    await page.waitForFunction(`${num('[data-testid="chart-rates"]', 'data-points')} >= ${before + 3}`)
    for (const id of ['rates', 'depth', 'commit'])
      assert.equal(await page.getByTestId(`chart-${id}`).locator('canvas').count(), 1, id)
    await page.screenshot({ path: join(ARTIFACTS, 'admin-dashboard.png'), fullPage: true })

    // a client leaves: the next refresh drops it
    await carol.close()
    await row('carol').waitFor({ state: 'detached' })
    await Promise.allSettled(sends)
    assert.deepEqual(errors, [], 'no uncaught errors in the page')
  },
)
