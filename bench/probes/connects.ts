/**
 * Issue 12 aim 4: how fast SDK clients connect and register against a running server, and what each one holds.
 *
 * `--count` clients (new names), `--concurrency` at a time, connect through SwitchboardClient; it prints the rate,
 * and with `--pid` the server's VmRSS per connection (read from /proc after a 2 s settle). Start the server with
 * the per-address caps lifted (every client comes from 127.0.0.1):
 *
 *   switchboard serve --port 24990 --data-dir /tmp/sb-probe --auth-rate 1000000 \
 *     --max-unauthenticated-per-address 100000 --max-connections-per-address 100000
 *   node --import tsx bench/probes/connects.ts --port 24990 --count 5000 --pid <server pid>
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { SwitchboardClient } from '../../src/client/index.js'

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '7070' },
    count: { type: 'string', default: '5000' },
    concurrency: { type: 'string', default: '64' },
    pid: { type: 'string' },
  },
})
const port = Number(values.port)
const count = Number(values.count)
const rss = (): number | undefined =>
  values.pid === undefined
    ? undefined
    : Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${values.pid}/status`, 'utf8'))?.[1] ?? Number.NaN)

const before = rss()
const clients: SwitchboardClient[] = []
let next = 0
const t0 = performance.now()
await Promise.all(
  Array.from({ length: Number(values.concurrency) }, async () => {
    while (next < count) {
      const k = next++
      clients.push(await SwitchboardClient.connect({ port, name: `p${process.pid}x${k}`, reconnect: false }))
    }
  }),
)
const ms = performance.now() - t0
let line = `${count} connected and registered in ${Math.round(ms)} ms: ${Math.round((count / ms) * 1000)}/s`
if (before !== undefined) {
  await new Promise((r) => setTimeout(r, 2000))
  const after = rss()!
  line += `; server RSS ${before} → ${after} KiB, ${((after - before) / count).toFixed(2)} KiB per connection`
}
console.log(line)
await Promise.all(clients.map((c) => c.deleteAccount().catch(() => c.close(1000))))
