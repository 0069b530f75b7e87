/** Small text helpers shared by the terminal commands. */
import type { ReceiptEvent } from '../client/client.js'

export function hhmmss(ms: number): string {
  const d = new Date(ms)
  const p = (n: number): string => String(n).padStart(2, '0')
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GiB`
}

/** "[#######.............]  35%  1.2 MiB / 3.4 MiB" */
export function progressBar(done: number, total: number, width = 24): string {
  const frac = total > 0 ? Math.min(1, done / total) : 1
  const filled = Math.round(frac * width)
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.round(frac * 100)).padStart(3)}%  ${bytes(done)} / ${bytes(total)}`
}

/** What a receipt means, the way the chat shows it: ✓ stored, ✓✓ delivered, … not delivered yet, read. */
export function receiptText(r: ReceiptEvent): string {
  const who = r.recipientName || `#${r.recipient}`
  switch (r.status) {
    case 200:
      return `✓✓ delivered to ${who}`
    case 202:
      return `✓ stored for ${who} (offline)`
    case 300:
      return `… not delivered yet to ${who} (no acknowledgement in time; still queued)`
    case 210:
      return `read by ${who}`
    case 404:
      return `✗ ${who} was deleted before reading it`
    case 410:
      return `✗ expired before ${who} took it`
    case 507:
      return `✗ dropped: the queue of ${who} is full`
    default:
      return `receipt ${r.status} from ${who}`
  }
}

/** "2026-12-02 16:45:36", local time: history spans days. */
export function dateTime(ms: number): string {
  const d = new Date(ms)
  const p = (n: number): string => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${hhmmss(ms)}`
}

/**
 * Lines for a page of history, oldest first (the server pages newest first): "[when] #seq alice → bob: text".
 * A sent copy names its recipient by id; `names` (id → name, e.g. from the page's received messages) says it.
 */
export function historyLines(
  messages: readonly {
    seq: number
    ts: number
    from: number
    fromName: string
    to: number
    topic?: string
    text: string
    sent: boolean
    file?: { name: string; fileId: string }
  }[],
  selfId: number,
  names: ReadonlyMap<number, string> = new Map(),
): string[] {
  const known = new Map(names)
  for (const m of messages) if (m.from !== selfId && m.fromName !== '') known.set(m.from, m.fromName)
  return [...messages].reverse().map((m) => {
    const from = m.from === selfId ? 'you' : m.fromName
    const to =
      m.topic !== undefined
        ? `@${m.topic}`
        : m.to === 0xffffffff
          ? 'room'
          : m.to === selfId
            ? 'you'
            : (known.get(m.to) ?? `#${m.to}`)
    const file = m.file !== undefined ? ` [file ${m.file.name} — /download ${m.file.fileId}]` : ''
    return `[${dateTime(m.ts)}] #${m.seq} ${from} → ${to}: ${m.text}${file}`
  })
}
