/** Reads a Switchboard server's /metrics (Prometheus text) for the figures the bench reports beside its own. */
import type { EventLoopDelay } from '../targets/target.js'

/** Samples of one metric by its label set as written (`{stat="p99"}`), or '' for none. */
export function samples(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    const rest = line.slice(name.length)
    const m = /^(\{[^}]*\})?\s+(\S+)/.exec(rest)
    if (m === null) continue
    out.set(m[1] ?? '', Number(m[2]))
  }
  return out
}

/**
 * Scrape `switchboard_event_loop_delay_seconds` (reset by every scrape: the figures cover the time since the
 * previous one). Undefined when the server does not export it.
 */
export async function scrapeEventLoopDelay(url: string): Promise<EventLoopDelay | undefined> {
  const t0 = performance.now()
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) })
  const text = await res.text()
  const scrapeMs = performance.now() - t0
  const s = samples(text, 'switchboard_event_loop_delay_seconds')
  const get = (stat: string): number => (s.get(`{stat="${stat}"}`) ?? Number.NaN) * 1000
  if (s.size === 0) return undefined
  const out: EventLoopDelay = { p50: get('p50'), p99: get('p99'), max: get('max'), scrapeMs }
  // prom-client's default metrics: a histogram of GC pauses by kind; its _sum is the time spent, cumulative.
  const gc = [...samples(text, 'switchboard_nodejs_gc_duration_seconds_sum').values()]
  if (gc.length > 0) out.gcSeconds = gc.reduce((a, b) => a + b, 0)
  return out
}
