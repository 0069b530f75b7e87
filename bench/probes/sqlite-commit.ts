/**
 * Issue 12 aims 1–2: where a SQLite group commit's time goes, outside the server. 200,000 direct messages among 50
 * pairs in batches (`--batch`, default 100), each written as the store writes it (a copy for the recipient and a
 * sent copy for the sender, a dedupe key, each user's counters and each receiver's cursor), WAL with
 * synchronous=FULL, on a fresh file under `--dir`. It prints the statements' time and the COMMIT's time per
 * message. `--shape`:
 *
 *   indexed   the rows go straight into the log with its key (user, seq) and log_peer (the store before schema 5)
 *   no-peer   the same without log_peer
 *   append    the rows go to an unindexed table (the log's tail, schema 5), the dedupe key as before
 *
 * `--checkpoint N` sets wal_autocheckpoint (SQLite's default 1000; 0 never).
 *
 *   node --import tsx bench/probes/sqlite-commit.ts --shape indexed
 *   node --import tsx bench/probes/sqlite-commit.ts --shape append --body 1024
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import Database from '../../src/store/sqlite/driver.js'

const { values } = parseArgs({
  options: {
    shape: { type: 'string', default: 'indexed' },
    batch: { type: 'string', default: '100' },
    body: { type: 'string', default: '16' },
    checkpoint: { type: 'string' },
    messages: { type: 'string', default: '200000' },
    dir: { type: 'string', default: tmpdir() },
  },
})
const shape = values.shape
if (shape !== 'indexed' && shape !== 'no-peer' && shape !== 'append') throw new Error(`unknown --shape ${shape}`)
const batch = Number(values.batch)
const total = Number(values.messages)
const dir = mkdtempSync(join(values.dir, 'sb-commit-probe-'))
const db = new Database(join(dir, 'probe.db'))
db.pragma('journal_mode = WAL')
db.pragma('synchronous = FULL')
db.pragma('cache_size = -65536')
if (values.checkpoint !== undefined) db.pragma(`wal_autocheckpoint = ${Number(values.checkpoint)}`)

const columns = `user INTEGER NOT NULL, seq INTEGER NOT NULL, sender INTEGER NOT NULL, sender_name TEXT NOT NULL,
  msg_id INTEGER NOT NULL, kind INTEGER NOT NULL, ts INTEGER NOT NULL, flags INTEGER NOT NULL, topic TEXT,
  expires_at INTEGER, not_before INTEGER, file_id TEXT, body BLOB NOT NULL, peer INTEGER, device INTEGER`
db.exec(`
  CREATE TABLE log (${columns}${shape === 'append' ? '' : ', PRIMARY KEY (user, seq)'});
  ${shape === 'indexed' ? 'CREATE INDEX log_peer ON log (user, peer, seq) WHERE peer IS NOT NULL;' : ''}
  CREATE TABLE dedupe (sender INTEGER NOT NULL, msg_id INTEGER NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (sender, msg_id)) WITHOUT ROWID;
  CREATE INDEX dedupe_at ON dedupe (at);
  CREATE TABLE users (id INTEGER PRIMARY KEY, next_seq INTEGER, queue_count INTEGER, queue_bytes INTEGER,
    handled_floor INTEGER, handled_above TEXT);
  CREATE TABLE devices (id INTEGER PRIMARY KEY, user INTEGER, ack_floor INTEGER, ack_above TEXT);
`)
const PAIRS = 50
for (let u = 1; u <= 2 * PAIRS; u++) {
  db.prepare(`INSERT INTO users VALUES (?, 1, 0, 0, 0, '')`).run(u)
  db.prepare(`INSERT INTO devices VALUES (?, ?, 0, '')`).run(u, u)
}
const insert = db.prepare(
  `INSERT INTO log (user, seq, sender, sender_name, msg_id, kind, ts, flags, topic, expires_at, not_before, file_id, body, peer, device)
   VALUES (?, ?, ?, ?, ?, 0, ?, ?, NULL, NULL, NULL, NULL, ?, ?, ?)`,
)
const dedupe = db.prepare(`INSERT OR IGNORE INTO dedupe VALUES (?, ?, ?)`)
const counters = db.prepare(
  `UPDATE users SET next_seq = ?, queue_count = ?, queue_bytes = ?, handled_floor = ?, handled_above = ? WHERE id = ?`,
)
const cursor = db.prepare(`UPDATE devices SET ack_floor = ?, ack_above = ? WHERE id = ?`)
const begin = db.prepare('BEGIN')
const commit = db.prepare('COMMIT')
const next = new Array<number>(2 * PAIRS + 1).fill(1)
const body = Buffer.alloc(Number(values.body), 1)
const peer = (u: number): number | null => (shape === 'indexed' ? u : null)
let sent = 0
let statements = 0n
let commits = 0n
const t0 = process.hrtime.bigint()
while (sent < total) {
  const a = process.hrtime.bigint()
  begin.run()
  const touched = new Set<number>()
  for (let i = 0; i < batch; i++) {
    const p = (sent + i) % PAIRS
    const receiver = 1 + p
    const sender = 1 + PAIRS + p
    const msgId = sent + i
    dedupe.run(sender, msgId, Date.now())
    insert.run(receiver, next[receiver]!++, sender, `s${sender}`, msgId, Date.now(), 5, body, peer(sender), null)
    insert.run(sender, next[sender]!++, sender, `s${sender}`, msgId, Date.now(), 5 | 64, body, peer(receiver), sender)
    touched.add(receiver).add(sender)
  }
  for (const u of touched) {
    counters.run(next[u], 5, 100, next[u]! - 3, '1,2', u)
    if (u <= PAIRS) cursor.run(next[u]! - 2, '', u)
  }
  const b = process.hrtime.bigint()
  commit.run()
  commits += process.hrtime.bigint() - b
  statements += b - a
  sent += batch
}
const us = Number(process.hrtime.bigint() - t0) / 1e3
db.close()
rmSync(dir, { recursive: true, force: true })
console.log(
  `${shape} batch=${batch} body=${body.length} B: ${Math.round(total / (us / 1e6))} msgs/s; per message ` +
    `statements ${(Number(statements) / 1e3 / total).toFixed(1)} µs, COMMIT ${(Number(commits) / 1e3 / total).toFixed(1)} µs ` +
    `(${Math.round(Number(commits) / 1e3 / (total / batch))} µs per commit)`,
)
