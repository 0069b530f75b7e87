/**
 * Issue 13 item 9: the HTTP port over TLS. A self-signed certificate made by openssl in the test; a real server
 * (`switchboard serve` wiring, --http-tls-key/--http-tls-cert, --metrics-token); real HTTPS requests (REST, the
 * page's security headers, /metrics with and without its bearer token) and a real WSS client speaking the native
 * protocol on /v1/ws to a native TCP user.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import https from 'node:https'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import WebSocket from 'ws'
import { startTestServer } from '../helpers/server.js'
import { registered } from '../helpers/native-client.js'
import { encode, FrameReader } from '../../src/protocols/native/codec.js'
import { PROTOCOL_VERSION, type Frame } from '../../src/protocols/native/frames.js'

/** A key and a self-signed certificate for 127.0.0.1 and localhost, valid for a day. */
function selfSigned(dir: string): { key: string; cert: string; ca: Buffer } {
  const key = join(dir, 'key.pem')
  const cert = join(dir, 'cert.pem')
  execFileSync(
    'openssl',
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=switchboard-test',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ], // prettier-ignore
    { stdio: 'pipe' },
  )
  return { key, cert, ca: readFileSync(cert) }
}

interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
}

function request(url: string, opts: https.RequestOptions & { body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, opts, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text: Buffer.concat(chunks).toString() }))
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}

async function tlsServer(t: import('node:test').TestContext) {
  const dir = mkdtempSync(join(tmpdir(), 'sb-tls-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const { key, cert, ca } = selfSigned(dir)
  const srv = await startTestServer(t, { httpPort: 0, httpTlsKey: key, httpTlsCert: cert, metricsToken: 'scrape-me' })
  const base = `https://127.0.0.1:${srv.server.port('http')}`
  return { srv, base, ca }
}

test('HTTPS: REST over TLS with a self-signed certificate, security headers on the page, plaintext refused', async (t) => {
  const { base, ca } = await tlsServer(t)

  // The certificate is checked for real: without its CA the client refuses the server.
  await assert.rejects(request(`${base}/healthz`), /self-signed|self signed/)

  const health = await request(`${base}/healthz`, { ca })
  assert.equal(health.status, 200, health.text)
  assert.equal(JSON.parse(health.text).status, 'ok')

  const reg = await request(`${base}/v1/register`, {
    ca,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'alice' }),
  })
  assert.equal(reg.status, 201, reg.text)
  const token = JSON.parse(reg.text).token as string
  const me = await request(`${base}/v1/session`, { ca, headers: { authorization: `Bearer ${token}` } })
  assert.equal(me.status, 200, me.text)

  const page = await request(`${base}/`, { ca })
  assert.equal(page.status, 200)
  assert.match(String(page.headers['content-type']), /text\/html/)
  const csp = String(page.headers['content-security-policy'])
  for (const d of [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "object-src 'none'",
  ])
    assert.ok(csp.includes(d), `CSP has ${d}: ${csp}`)
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/)
  assert.equal(page.headers['x-content-type-options'], 'nosniff')
  assert.equal(page.headers['x-frame-options'], 'SAMEORIGIN')
  assert.match(String(page.headers['strict-transport-security']), /max-age=\d+/)

  // The reference page's one inline stylesheet is allowed by its hash, nothing else inline.
  const docs = await request(`${base}/docs`, { ca })
  assert.equal(docs.status, 200)
  assert.match(String(docs.headers['content-security-policy']), /style-src 'self' 'sha256-[A-Za-z0-9+/=]+'/)

  // Plain HTTP on the TLS port gets no answer from the API.
  await assert.rejects(fetch(`${base.replace('https:', 'http:')}/healthz`))
})

test('WSS: the native protocol on /v1/ws over TLS reaches a native TCP user and back', async (t) => {
  const { srv, base, ca } = await tlsServer(t)
  const bob = await registered(t, srv.port, 'bob')

  const ws = new WebSocket(`${base.replace('https:', 'wss:')}/v1/ws`, { ca })
  t.after(() => ws.terminate())
  const reader = new FrameReader(16 * 1024 * 1024)
  const got: Frame[] = []
  let wake: (() => void) | undefined
  ws.on('message', (d: Buffer) => {
    for (const x of reader.push(d)) if (x.ok) got.push(x.frame)
    wake?.()
  })
  const next = async <T extends Frame['type']>(type: T): Promise<Extract<Frame, { type: T }>> => {
    for (;;) {
      const i = got.findIndex((f) => f.type === type)
      if (i >= 0) return got.splice(i, 1)[0] as Extract<Frame, { type: T }>
      await new Promise<void>((r) => (wake = r))
    }
  }
  await new Promise((r, j) => ws.once('open', r).once('error', j))

  ws.send(encode({ type: 'REGISTER', corr: 1, version: PROTOCOL_VERSION, flags: 0, name: 'wss-alice' }))
  const welcome = await next('WELCOME')
  assert.equal(welcome.name, 'wss-alice')

  ws.send(
    encode({
      type: 'SEND',
      corr: 2,
      msgId: 1,
      to: { kind: 'name', name: 'bob' },
      kind: 0,
      flags: 0,
      ttlMs: 0,
      notBefore: 0,
      body: Buffer.from('over wss'),
    }),
  )
  assert.equal((await next('ACCEPTED')).corr, 2)
  const d = await bob.next('DELIVER')
  assert.equal(d.msg.body.toString(), 'over wss')
  assert.equal(d.msg.fromName, 'wss-alice')

  const back = await bob.say({ kind: 'user', id: welcome.id }, 'back over tcp')
  assert.equal(back.type, 'ACCEPTED')
  assert.equal((await next('DELIVER')).msg.body.toString(), 'back over tcp')
})

test('/metrics with --metrics-token: 401 without the bearer token or with a wrong one, 200 with it', async (t) => {
  const { base, ca } = await tlsServer(t)
  const none = await request(`${base}/metrics`, { ca })
  assert.equal(none.status, 401)
  assert.match(String(none.headers['www-authenticate']), /^Bearer/)
  assert.doesNotMatch(none.text, /switchboard_sessions/)
  const wrong = await request(`${base}/metrics`, { ca, headers: { authorization: 'Bearer scrape-you' } })
  assert.equal(wrong.status, 401)
  const right = await request(`${base}/metrics`, { ca, headers: { authorization: 'Bearer scrape-me' } })
  assert.equal(right.status, 200)
  assert.match(right.text, /switchboard_sessions/)
})
