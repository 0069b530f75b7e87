/**
 * The web page's details (issue 14, item 12) in real Chromium against a real server: a name checked
 * against the server's own limit (GET /v1/limits; the server here allows 12 bytes, not the default 25), a
 * recipient looked up before its conversation opens, a message the server refuses shown as a failure with
 * a retry that works, receipts as ticks with the words on hover, a visible offline dot, the favicon, and a
 * hostile message drawn as text: links only for http(s), no HTML from users. Screenshots go to
 * test-artifacts/web-details-*.png.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import type { Locator, Page } from 'playwright-core'
import { ARTIFACTS, ensureWebBuilt, launchChromium, skipWithoutChromium } from '../helpers/browser.js'
import { startTestServer } from '../helpers/server.js'

/** The page's getComputedStyle, reached through globalThis: the root tsconfig has no DOM types. */
type StyleOf = { getComputedStyle(el: unknown): Record<string, string> }

/** A computed style of an element. */
async function style(l: Locator, prop: string): Promise<string> {
  return l.evaluate((el, p) => (globalThis as unknown as StyleOf).getComputedStyle(el)[p]!, prop)
}

async function login(page: Page, url: string, name: string): Promise<void> {
  await page.goto(url)
  await page.getByTestId('name').fill(name)
  await page.getByTestId('login').click()
  await page.getByTestId('me').filter({ hasText: name }).waitFor()
}

/** Waits until the last message this page sent in the open conversation has one of these states. */
async function lastStatus(page: Page, wanted: string[]): Promise<string> {
  const status = page.getByTestId('msg-out').last().getByTestId('status')
  // A selector, not a function polled in the page: under the page's CSP (no 'unsafe-eval') Playwright cannot
  // evaluate a polled predicate, and a wait that is not over at once failed with an EvalError.
  await page
    .getByTestId('msg-out')
    .last()
    .locator(wanted.map((w) => `[data-testid="status"][data-status=${JSON.stringify(w)}]`).join(', '))
    .first()
    .waitFor({ timeout: 15_000 })
  return (await status.getAttribute('data-status'))!
}

test(
  'web page: limits from the server, recipients checked, failures with retry, ticks, favicon, escaped links',
  { skip: skipWithoutChromium, timeout: 120_000 },
  async (t) => {
    ensureWebBuilt()
    const { server } = await startTestServer(t, { httpPort: 0, maxNameBytes: 12, ackTimeout: 1000 })
    const base = `http://127.0.0.1:${server.port('http')}`
    const url = `${base}/`
    const api = async (method: string, path: string, body?: unknown, token?: string): Promise<Response> =>
      fetch(base + path, {
        method,
        headers: {
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      })

    // ------------------------------------------------------------------ the server's limits, and the favicon
    const limits = (await (await api('GET', '/v1/limits')).json()) as Record<string, number>
    assert.equal(limits.maxNameBytes, 12)
    const ico = await api('GET', '/favicon.ico')
    assert.equal(ico.status, 200, '/favicon.ico is served')
    const icoBytes = Buffer.from(await ico.arrayBuffer())
    assert.deepEqual([...icoBytes.subarray(0, 4)], [0, 0, 1, 0], 'an ICO file')
    assert.equal((await api('GET', '/favicon.svg')).status, 200)

    const browser = await launchChromium(t)
    const desk = await browser.newContext({ viewport: { width: 1100, height: 720 } })
    const alice = await desk.newPage()
    const errors: string[] = []
    alice.on('pageerror', (e) => errors.push(e.message))
    let dialogs = 0
    alice.on('dialog', (d) => {
      dialogs++
      void d.dismiss()
    })

    await alice.goto(url)
    assert.ok((await alice.locator('link[rel="icon"]').count()) >= 1, 'the page names its icon')
    // The name field follows the server: 12 bytes here; 'é' takes two.
    await alice.getByTestId('name-rule').and(alice.locator('[data-max="12"]')).waitFor()
    await alice.getByTestId('name').fill('éééééééé')
    const rule = (await alice.getByTestId('name-rule').textContent()) ?? ''
    assert.match(rule, /at most 12 bytes/)
    assert.match(rule, /this one is 16/)
    assert.ok(await alice.getByTestId('login').isDisabled(), 'a name over the limit cannot be sent')
    await alice.screenshot({ path: join(ARTIFACTS, 'web-details-name-too-long.png') })
    // Had it reached the server anyway, its error names the limit once.
    await alice.evaluate("window.switchboard.login('abcdefghijklm')")
    const loginError = (await alice.getByTestId('login-error').textContent()) ?? ''
    assert.match(loginError, /maxNameBytes \(12 bytes\)/)
    assert.equal(loginError.split('maxNameBytes').length - 1, 1, `the limit is named once: ${loginError}`)
    assert.doesNotMatch(loginError, /\(limit:/)

    await alice.getByTestId('name').fill('alice')
    await alice.getByTestId('login').click()
    await alice.getByTestId('me').filter({ hasText: 'alice' }).waitFor()

    // ------------------------------------------------------------------ the recipient is checked first
    await alice.getByTestId('to-input').fill('nobody')
    await alice.getByTestId('to-input').press('Enter')
    const toError = alice.getByTestId('to-error')
    await toError.waitFor()
    assert.equal(await toError.textContent(), 'There is no user named nobody.')
    assert.equal(
      await alice.getByTestId('conv-title').textContent(),
      '# Everyone',
      'no conversation opened for a name that does not exist',
    )
    assert.equal(await alice.getByTestId('person-nobody').count(), 0)
    await alice.screenshot({ path: join(ARTIFACTS, 'web-details-no-such-user.png') })

    // dave exists (registered over HTTP, then logged out): his conversation opens, offline, and says so.
    const reg = async (): Promise<string> => {
      const r = (await (await api('POST', '/v1/register', { name: 'dave' })).json()) as { token: string }
      assert.equal((await api('DELETE', '/v1/session', undefined, r.token)).status < 300, true)
      return r.token
    }
    let daveToken = await reg()
    await alice.getByTestId('to-input').fill('dave')
    await alice.getByTestId('to-input').press('Enter')
    await alice.getByTestId('conv-title').filter({ hasText: 'dave' }).waitFor()
    assert.match(
      (await alice.getByTestId('conv-presence').textContent()) ?? '',
      /^offline, last seen .* — messages wait for them$/,
    )

    // A message to offline dave is stored: one tick, the word on hover.
    await alice.getByTestId('compose').fill('hello dave')
    await alice.getByTestId('send').click()
    assert.equal(await lastStatus(alice, ['stored']), 'stored')
    const stored = alice.getByTestId('msg-out').last().getByTestId('status')
    assert.equal(await stored.getAttribute('title'), 'stored: it waits for them')
    assert.equal(await stored.locator('svg path').count(), 1, 'one tick: stored')

    // The offline dot beside dave in the list is plainly visible: a 2px ring in the muted colour.
    const dot = alice.getByTestId('person-dave').locator('.dot')
    const ring = {
      width: await style(dot, 'borderTopWidth'),
      color: await style(dot, 'borderTopColor'),
      title: await dot.getAttribute('title'),
    }
    assert.equal(ring.title, 'offline')
    assert.equal(ring.width, '2px')
    assert.notEqual(ring.color, 'rgba(0, 0, 0, 0)')

    // ------------------------------------------------------------------ a failure is shown as one, and retried
    assert.equal(
      (
        await api(
          'DELETE',
          '/v1/account',
          undefined,
          ((await (await api('POST', '/v1/login', { token: daveToken })).json()) as { token: string }).token,
        )
      ).status < 300,
      true,
    )
    await alice.getByTestId('compose').fill('are you there?')
    await alice.getByTestId('send').click()
    assert.equal(await lastStatus(alice, ['failed']), 'failed')
    const failed = alice.getByTestId('msg-out').last()
    assert.match((await failed.getAttribute('class')) ?? '', /\bfailed\b/)
    assert.match((await failed.getByTestId('failure').textContent()) ?? '', /no such user/i)
    const bg = await style(failed, 'backgroundColor')
    const [r, g, b] = (bg.match(/\d*\.?\d+/g) ?? []).map(Number)
    assert.ok(r! > g! && r! > b!, `a failed message is red, not blue: ${bg}`)
    assert.equal(await style(failed, 'borderTopColor'), 'rgb(214, 69, 69)', 'with a red border')

    // Coming back to the conversation, the page looks dave up again and says he is gone.
    await alice.getByTestId('room').click()
    await alice.getByTestId('person-dave').click()
    await alice.getByTestId('conv-presence').filter({ hasText: 'no user by this name now' }).waitFor()
    await alice.screenshot({ path: join(ARTIFACTS, 'web-details-failed.png') })

    // dave registers again; Retry sends it, and it is stored for him.
    daveToken = await reg()
    await alice.getByTestId('room').click()
    await alice.getByTestId('person-dave').click()
    await alice
      .getByTestId('conv-presence')
      .filter({ hasText: /^offline, last seen/ })
      .waitFor()
    await failed.getByTestId('retry').click()
    assert.equal(await lastStatus(alice, ['stored']), 'stored')
    assert.equal(await alice.getByTestId('msg-out').last().getByTestId('failure').count(), 0)
    assert.doesNotMatch((await alice.getByTestId('msg-out').last().getAttribute('class')) ?? '', /\bfailed\b/)

    // ------------------------------------------------------------------ ticks: delivered, then read
    const phone = await browser.newContext({ viewport: { width: 390, height: 780 }, isMobile: true, hasTouch: true })
    const bob = await phone.newPage()
    bob.on('pageerror', (e) => errors.push(e.message))
    bob.on('dialog', (d) => {
      dialogs++
      void d.dismiss()
    })
    await login(bob, url, 'bob')
    await alice.getByTestId('person-bob').waitFor()
    await alice.getByTestId('person-bob').click()
    await alice.getByTestId('compose').fill('see *this*, _that_ and `code` at https://example.com/a?b=1&c=2')
    await alice.getByTestId('send').click()
    assert.equal(await lastStatus(alice, ['delivered']), 'delivered')
    const delivered = alice.getByTestId('msg-out').last().getByTestId('status')
    assert.equal(await delivered.getAttribute('title'), 'delivered')
    assert.equal(await delivered.locator('svg path').count(), 2, 'two ticks: delivered')
    const deliveredColour = await style(delivered, 'color')
    // A message that arrives while bob looks at the conversation is read at once (210).
    await bob.getByTestId('person-alice').click()
    await alice.getByTestId('compose').fill('and now you are looking')
    await alice.getByTestId('send').click()
    assert.equal(await lastStatus(alice, ['read']), 'read')
    const read = alice.getByTestId('msg-out').last().getByTestId('status')
    assert.equal(await read.getAttribute('title'), 'read')
    assert.equal(await read.locator('svg path').count(), 2)
    assert.notEqual(await style(read, 'color'), deliveredColour, 'read ticks are coloured')
    await alice.getByTestId('msg-out').last().getByTestId('status').hover()
    await alice.screenshot({ path: join(ARTIFACTS, 'web-details-ticks.png') })

    // bob sees the links and the emphasis
    const rich = bob.getByTestId('msg-in').filter({ hasText: 'see this' })
    await rich.locator('a').waitFor()
    assert.equal(await rich.locator('strong').textContent(), 'this')
    assert.equal(await rich.locator('em').textContent(), 'that')
    assert.equal(await rich.locator('code').textContent(), 'code')
    assert.equal(await rich.locator('a').getAttribute('href'), 'https://example.com/a?b=1&c=2')
    assert.match((await rich.locator('a').getAttribute('rel')) ?? '', /noopener/)

    // ------------------------------------------------------------------ a hostile message is text
    const hostile =
      '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script> javascript:window.__pwned=3 ' +
      '[x](javascript:window.__pwned=4) <a href="javascript:window.__pwned=5">click</a> data:text/html,<b>x</b> *<b>bold</b>*'
    await bob.getByTestId('compose').fill(hostile)
    await bob.getByTestId('send').click()
    const evil = alice.getByTestId('msg-in').filter({ hasText: 'onerror' })
    await evil.waitFor()
    assert.equal(await evil.locator('img, script, b, a, iframe').count(), 0, 'no element from the text')
    assert.equal(await evil.locator('.text').innerText(), hostile.replace('*<b>bold</b>*', '<b>bold</b>'))
    // every link on either page points to http(s) or mailto
    for (const p of [alice, bob]) {
      const hrefs = await Promise.all(
        (await p.locator('.messages a').all()).map(async (a) => (await a.getAttribute('href')) ?? ''),
      )
      for (const h of hrefs) assert.match(h, /^(https?:|mailto:)/, `a safe link: ${h}`)
    }
    await evil.locator('.text').click()
    assert.equal(await alice.evaluate('window.__pwned'), undefined, 'nothing in the message ran')
    assert.equal(dialogs, 0)
    await alice.screenshot({ path: join(ARTIFACTS, 'web-details-hostile.png') })
    await bob.screenshot({ path: join(ARTIFACTS, 'web-details-bob.png') })

    assert.deepEqual(errors, [], 'no uncaught errors in the pages')
  },
)
