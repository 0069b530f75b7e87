/**
 * Issue 13 finding 3: what idle HTTP polling sessions hold. `--sessions` users register over HTTP (each
 * registration starts a polling session) and never poll; a native client then sends `--messages` room messages of
 * `--bytes` bytes of text (`--char` repeated: 'é' by default, as the hostile-load test), each ACCEPTED before the next.
 *
 * Prints the server's RSS and V8 heap (switchboard_nodejs_heap_size_used_bytes from /metrics) before and after
 * (read 2 s after the last message, the server left alone; no forced collection is possible from outside), and,
 * where the server has them, what its polling sessions say they hold and dropped.
 *
 *   node --import tsx bench/probes/hostile/idle-polling.ts --sessions 100 --messages 200 --bytes 60000 --runs 3
 */
import { parseArgs } from 'node:util'
import { NativeClient } from '../../../test/helpers/native-client.js'
import { opt, repeat, round, rssMiB, sleep, startServer, timedGet, type Figures } from './common.js'

const { values } = parseArgs({
  options: {
    sessions: { type: 'string', default: '100' },
    messages: { type: 'string', default: '200' },
    bytes: { type: 'string', default: '60000' },
    char: { type: 'string', default: 'é' },
    runs: { type: 'string', default: '1' },
  },
})
const SESSIONS = Number(values.sessions)
const MESSAGES = Number(values.messages)
const BYTES = Number(values.bytes)
/** The character the text repeats ('é': two UTF-8 bytes, one byte in V8's Latin-1 strings; 'ж': two in both). */
const CHAR = values.char!

/** A metric's value from /metrics text (the first sample of that name), NaN if absent. */
function metric(text: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)`, 'm').exec(text)
  return m === null ? Number.NaN : Number(m[1])
}

/** POST /v1/register, waiting out a 429 (the server's login rate per address) as a client would. */
async function registerHttp(base: string, name: string): Promise<void> {
  for (;;) {
    const r = await fetch(`${base}/v1/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name }),
    })
    await r.text()
    if (r.status === 201) return
    if (r.status !== 429) throw new Error(`register ${name}: ${r.status}`)
    await sleep(Number(r.headers.get('retry-after') ?? '1') * 1000)
  }
}

async function measure(): Promise<Figures> {
  // The fixed server's login rate (20 a second per address) would only slow the setup down: raised where known.
  const s = await startServer(['--http-port', '0', ...opt('--auth-rate', '100000')])
  try {
    const base = `http://127.0.0.1:${s.ports().http!}`
    for (let i = 0; i < SESSIONS; i++) await registerHttp(base, `idle${i}x${process.pid % 1000}`)
    const talker = await NativeClient.connect(s.port)
    await talker.register(`talker${process.pid}`)
    await sleep(2000)
    const m0 = (await timedGet(`${base}/metrics`, 10_000)).body
    const rss0 = rssMiB(s.pid)
    const text = Buffer.from(CHAR.repeat(Math.floor(BYTES / Buffer.byteLength(CHAR))))
    const t0 = performance.now()
    for (let i = 0; i < MESSAGES; i++) {
      await talker.expect(
        { type: 'SEND', msgId: i + 1, to: { kind: 'all' }, kind: 0, flags: 0, ttlMs: 0, notBefore: 0, body: text },
        'ACCEPTED',
        60_000,
      )
      // Room copies pushed to this client are not kept.
      talker.take('DELIVER')
    }
    const sendSeconds = (performance.now() - t0) / 1000
    await sleep(2000)
    const m1 = (await timedGet(`${base}/metrics`, 10_000)).body
    const rss1 = rssMiB(s.pid)
    talker.destroy()
    const heap0 = metric(m0, 'switchboard_nodejs_heap_size_used_bytes') / 1048576
    const heap1 = metric(m1, 'switchboard_nodejs_heap_size_used_bytes') / 1048576
    const ext0 = metric(m0, 'switchboard_nodejs_external_memory_bytes') / 1048576
    const ext1 = metric(m1, 'switchboard_nodejs_external_memory_bytes') / 1048576
    return {
      sessions: SESSIONS,
      messages: MESSAGES,
      bytes: BYTES,
      rssBeforeMiB: round(rss0),
      rssAfterMiB: round(rss1),
      rssGrownMiB: round(rss1 - rss0),
      heapUsedBeforeMiB: round(heap0),
      heapUsedAfterMiB: round(heap1),
      heapGrownMiB: round(heap1 - heap0),
      externalGrownMiB: round(ext1 - ext0),
      // The fixed server's own account (NaN where the metric does not exist).
      eventBufferHeldMiB: round(metric(m1, 'switchboard_http_event_buffer_bytes') / 1048576),
      eventsDropped: metric(m1, 'switchboard_http_events_dropped_total'),
      sendSeconds: round(sendSeconds, 2),
    }
  } finally {
    await s.stop()
  }
}

await repeat(
  `finding 3: ${SESSIONS} idle HTTP polling sessions, ${MESSAGES} room messages of ${BYTES} bytes of '${CHAR}'`,
  Number(values.runs),
  measure,
)
process.exit(0)
