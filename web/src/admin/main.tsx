/**
 * The operator's dashboard (/admin): polls /admin/metrics.json once a second (the browser sends the admin
 * token it was asked for) and draws tiles, uPlot charts of the last five minutes and tables of who is
 * online, the largest queues and the gateways. `data-testid` attributes are what test/integration/admin.test.ts
 * reads; `data-updates` on the page counts the refreshes.
 */
import { render } from 'preact'
import { useEffect, useRef, useState } from 'preact/hooks'
import type { JSX } from 'preact'
import uPlot from 'uplot'
import 'uplot/dist/uPlot.min.css'
import { figures, type Figures, type Snapshot } from './data.js'
import './admin.css'

const DATA_URL = `${location.pathname.replace(/\/+$/, '')}/metrics.json`
const INTERVAL_MS = Math.max(250, Number(new URLSearchParams(location.search).get('interval') ?? 1000) || 1000)
/** Points kept per chart: five minutes at one a second. */
const KEEP = 300

interface History {
  t: number[]
  in: number[]
  out: number[]
  receipts: number[]
  depth: number[]
  commitMs: (number | null)[]
  batch: (number | null)[]
}

const emptyHistory = (): History => ({ t: [], in: [], out: [], receipts: [], depth: [], commitMs: [], batch: [] })

function push(h: History, f: Figures): History {
  const keep = <T,>(a: T[], v: T): T[] => [...a, v].slice(-KEEP)
  return {
    t: keep(h.t, f.at / 1000),
    in: keep(h.in, f.inPerSec),
    out: keep(h.out, f.outPerSec),
    receipts: keep(h.receipts, f.receiptsPerSec),
    depth: keep(h.depth, f.queueDepth),
    commitMs: keep(h.commitMs, f.commitMs ?? null),
    batch: keep(h.batch, f.batch ?? null),
  }
}

function fmt(n: number | undefined, digits = 1): string {
  if (n === undefined || !Number.isFinite(n)) return '–'
  if (Math.abs(n) >= 1e6) return `${(n / 1e6).toFixed(digits)}M`
  if (Math.abs(n) >= 1e4) return `${(n / 1e3).toFixed(digits)}k`
  return Number.isInteger(n) ? String(n) : n.toFixed(digits)
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${(n / 1024 / 1024).toFixed(1)} MiB`
}

function ago(ts: number, now: number): string {
  const s = Math.max(0, Math.round((now - ts) / 1000))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m`
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`
}

/** A small uPlot chart of some series of the history; redrawn in place on every refresh. */
function Chart(props: {
  id: string
  title: string
  series: { label: string; color: string; values: (h: History) => (number | null)[] }[]
  history: History
}): JSX.Element {
  const box = useRef<HTMLDivElement>(null)
  const plot = useRef<uPlot | null>(null)
  const data = (): uPlot.AlignedData => [props.history.t, ...props.series.map((s) => s.values(props.history))]
  useEffect(() => {
    const el = box.current!
    const u = new uPlot(
      {
        width: Math.max(200, el.clientWidth),
        height: 150,
        legend: { show: true, live: false },
        cursor: { show: false },
        scales: { x: { time: true }, y: { range: (_u, min, max) => [0, Math.max(1, max ?? min ?? 1) * 1.1] } },
        axes: [
          { stroke: 'currentColor', grid: { stroke: 'rgba(127,127,127,0.15)' }, ticks: { show: false } },
          { stroke: 'currentColor', grid: { stroke: 'rgba(127,127,127,0.15)' }, ticks: { show: false }, size: 48 },
        ],
        series: [{}, ...props.series.map((s) => ({ label: s.label, stroke: s.color, width: 2, spanGaps: true }))],
      },
      data(),
      el,
    )
    plot.current = u
    const ro = new ResizeObserver(() => u.setSize({ width: Math.max(200, el.clientWidth), height: 150 }))
    ro.observe(el)
    return () => {
      ro.disconnect()
      u.destroy()
      plot.current = null
    }
  }, [])
  useEffect(() => plot.current?.setData(data()), [props.history])
  return (
    <section
      class="card chart"
      data-testid={`chart-${props.id}`}
      data-points={props.history.t.length}
      data-values={props.series[0]!.values(props.history).filter((v) => v !== null).length}
    >
      <h2>{props.title}</h2>
      <div ref={box} class="plot" />
    </section>
  )
}

function Tile(props: { id: string; label: string; value: string; sub?: string; warn?: boolean }): JSX.Element {
  return (
    <div class={`tile${props.warn ? ' warn' : ''}`} data-testid={`tile-${props.id}`}>
      <div class="label">{props.label}</div>
      <div class="value" data-testid={`value-${props.id}`}>
        {props.value}
      </div>
      {props.sub && <div class="sub">{props.sub}</div>}
    </div>
  )
}

function Dashboard(): JSX.Element {
  const [snap, setSnap] = useState<Snapshot | undefined>(undefined)
  const [fig, setFig] = useState<Figures | undefined>(undefined)
  const [history, setHistory] = useState<History>(emptyHistory)
  const [error, setError] = useState<string | undefined>(undefined)
  const [updates, setUpdates] = useState(0)
  const prev = useRef<Snapshot | undefined>(undefined)

  useEffect(() => {
    let stop = false
    let timer: ReturnType<typeof setTimeout> | undefined
    const tick = async (): Promise<void> => {
      try {
        const r = await fetch(DATA_URL, { credentials: 'same-origin', cache: 'no-store' })
        if (r.status === 401) throw new Error('the admin token was not accepted: reload the page and give it again')
        if (!r.ok) throw new Error(`the server answered ${r.status}`)
        const s = (await r.json()) as Snapshot
        const f = figures(s, prev.current)
        if (prev.current) setHistory((h) => push(h, f))
        prev.current = s
        setSnap(s)
        setFig(f)
        setError(undefined)
        setUpdates((n) => n + 1)
      } catch (err) {
        setError(err instanceof Error ? err.message : String(err))
      }
      if (!stop) timer = setTimeout(() => void tick(), INTERVAL_MS)
    }
    void tick()
    return () => {
      stop = true
      clearTimeout(timer)
    }
  }, [])

  const now = snap?.at ?? Date.now()
  return (
    <div class="admin" data-testid="dashboard" data-updates={updates}>
      <header class="top">
        <span class="brand">
          <img src="../favicon.svg" width="22" height="22" alt="" /> Switchboard <span class="muted">operator</span>
        </span>
        <span class={`live ${error ? 'stale' : 'ok'}`} data-testid="live">
          <span class="dot" /> {error ? 'not updating' : snap ? `live · ${new Date(snap.at).toLocaleTimeString()}` : 'loading…'}
        </span>
      </header>
      {error && (
        <p class="error" role="alert" data-testid="error">
          {error}
        </p>
      )}
      {fig && snap && (
        <main>
          <div class="tiles">
            <Tile
              id="online"
              label="Online"
              value={fmt(fig.online)}
              sub={
                Object.entries(fig.byProtocol)
                  .map(([p, n]) => `${p} ${n}`)
                  .join(' · ') || `${fmt(fig.users)} registered`
              }
            />
            <Tile id="in" label="Messages in /s" value={fmt(fig.inPerSec)} />
            <Tile id="out" label="Messages out /s" value={fmt(fig.outPerSec)} />
            <Tile id="receipts" label="Receipts /s" value={fmt(fig.receiptsPerSec)} />
            <Tile id="depth" label="Queued (online users)" value={fmt(fig.queueDepth)} sub={bytes(fig.queueBytes)} />
            <Tile
              id="slow"
              label="Slow consumers cut"
              value={fmt(fig.slowConsumers)}
              warn={fig.slowConsumers > 0}
              sub="since start"
            />
            <Tile
              id="commit"
              label="Store commit"
              value={`${fmt(fig.commitMs ?? fig.lastCommitMs, 2)} ms`}
              sub={fig.commitMs === undefined ? 'idle: the last commit' : 'mean of this second'}
            />
            <Tile
              id="batch"
              label="Commit batch"
              value={fig.batch === undefined ? 'idle' : `${fmt(fig.batch)} ops`}
              sub={`largest ${fmt(fig.maxBatch)}`}
            />
          </div>
          <div class="charts">
            <Chart
              id="rates"
              title="Messages and receipts per second"
              history={history}
              series={[
                { label: 'in', color: '#2f6fed', values: (h) => h.in },
                { label: 'out', color: '#1f9d55', values: (h) => h.out },
                { label: 'receipts', color: '#b7791f', values: (h) => h.receipts },
              ]}
            />
            <Chart
              id="depth"
              title="Queued for online users"
              history={history}
              series={[{ label: 'messages', color: '#8e44ad', values: (h) => h.depth }]}
            />
            <Chart
              id="commit"
              title="Store commits: mean latency (ms) and batch size"
              history={history}
              series={[
                { label: 'ms', color: '#d64545', values: (h) => h.commitMs },
                { label: 'ops/batch', color: '#2f6fed', values: (h) => h.batch },
              ]}
            />
          </div>
          <div class="tables">
            <section class="card">
              <h2>
                Online <span class="muted">({snap.online.length})</span>
              </h2>
              <table data-testid="online">
                <thead>
                  <tr>
                    <th>name</th>
                    <th>protocol</th>
                    <th>for</th>
                    <th class="num">queued</th>
                  </tr>
                </thead>
                <tbody>
                  {snap.online.map((u) => (
                    <tr key={u.id} data-testid="online-row" data-name={u.name}>
                      <td>{u.name}</td>
                      <td>
                        <span class="proto">{u.protocol}</span>
                      </td>
                      <td>{ago(u.since, now)}</td>
                      <td class="num">{u.queued}</td>
                    </tr>
                  ))}
                  {snap.online.length === 0 && (
                    <tr>
                      <td colSpan={4} class="muted">
                        Nobody is online.
                      </td>
                    </tr>
                  )}
                </tbody>
              </table>
            </section>
            <section class="card">
              <h2>Largest queues</h2>
              <table data-testid="queues">
                <thead>
                  <tr>
                    <th>user</th>
                    <th class="num">messages</th>
                    <th class="num">bytes</th>
                  </tr>
                </thead>
                <tbody>
                  {snap.queues.map((q) => (
                    <tr key={q.name} data-testid="queue-row" data-name={q.name}>
                      <td>{q.name}</td>
                      <td class="num">{q.count}</td>
                      <td class="num">{bytes(q.bytes)}</td>
                    </tr>
                  ))}
                  {snap.queues.length === 0 && (
                    <tr>
                      <td colSpan={3} class="muted">
                        Every online user's queue is empty.
                      </td>
                    </tr>
                  )}
                </tbody>
              </table>
            </section>
            <section class="card">
              <h2>Gateways</h2>
              <table data-testid="gateways">
                <thead>
                  <tr>
                    <th>gateway</th>
                    <th class="num">connections</th>
                  </tr>
                </thead>
                <tbody>
                  {snap.gateways.map((g) => (
                    <tr key={g.name} data-testid="gateway-row" data-name={g.name}>
                      <td>{g.name}</td>
                      <td class="num">{g.connections}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </section>
          </div>
        </main>
      )}
    </div>
  )
}

render(<Dashboard />, document.getElementById('admin')!)
