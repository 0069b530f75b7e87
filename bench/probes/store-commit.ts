/**
 * Issue 12 aim 1: what the real SqliteStore's group commit costs per message, outside the server (no sockets, no
 * protocol, no load generator sharing the two cores). 50 pairs, as the bench's direct scenario: each batch carries
 * `--batch` sends (a dedupe key, the recipient's copy and the sender's sent copy, as the core submits them) and the
 * recipients' acknowledgements of the previous batch's messages, on a fresh file under `--dir` with the store's
 * own settings (WAL, synchronous=FULL, the checkpoint thread). Prints messages a second, the process's CPU per
 * message (every thread: the checkpoints too), the bytes it wrote per message (/proc/self/io) and the longest
 * commit (a turn of the event loop). `--no-dedupe` sends without a dedupe key,
 * `--no-sent` without the sender's sent copy, `--no-acks` acknowledges nothing (what each costs).
 *
 *   node --import tsx bench/probes/store-commit.ts
 *   node --import tsx bench/probes/store-commit.ts --body 1024 --batch 400
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js'
import type { StoreOp } from '../../src/store/store.js'

const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '200' },
    body: { type: 'string', default: '16' },
    messages: { type: 'string', default: '200000' },
    dir: { type: 'string', default: tmpdir() },
    'no-dedupe': { type: 'boolean', default: false },
    'no-acks': { type: 'boolean', default: false },
    'no-sent': { type: 'boolean', default: false },
  },
})
const batch = Number(values.batch)
const total = Number(values.messages)
const PAIRS = 50
const SENT = 8
const limits = { maxCount: 1_000_000, maxBytes: 1 << 30 }

function writtenBytes(): number {
  const m = /write_bytes: (\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))
  return m === null ? 0 : Number(m[1])
}

const dir = mkdtempSync(join(values.dir, 'sb-store-probe-'))
const store = new SqliteStore({ path: join(dir, 'probe.db') })
await store.open()
const users: { id: number; device: number }[] = []
for (let i = 0; i < 2 * PAIRS; i++) {
  const r = await store.createUser(`u${i}`, { tokenHash: null, label: 'probe' }, Date.now())
  users.push({ id: r.user.id, device: r.device.id })
}
const body = Buffer.alloc(Number(values.body), 1)
let acks: StoreOp[] = []
let sent = 0
let longest = 0
let longestTurn = 0
const cpu0 = process.cpuUsage()
const io0 = writtenBytes()
const t0 = performance.now()
while (sent < total) {
  const ops: StoreOp[] = acks
  for (let i = 0; i < batch; i++, sent++) {
    const sender = users[PAIRS + (sent % PAIRS)]!
    const receiver = users[sent % PAIRS]!
    const base = { from: sender.id, fromName: 'sender', msgId: sent + 1, kind: 'text' as const, ts: Date.now(), body }
    ops.push({
      type: 'send',
      dedupe: values['no-dedupe'] ? undefined : { sender: sender.id, msgId: sent + 1 },
      copies: [
        { ...base, to: receiver.id, flags: 1, peer: sender.id },
        ...(values['no-sent'] ? [] : [{ ...base, to: sender.id, flags: 1 | SENT, peer: receiver.id, device: sender.device }]),
      ],
      limits,
    })
  }
  const a = performance.now()
  const results = await store.commit(ops)
  longest = Math.max(longest, performance.now() - a)
  acks = []
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!
    const r = results[i]!
    if (values['no-acks'] || op.type !== 'send' || r.type !== 'send' || r.duplicate) continue
    const receiver = users.find((u) => u.id === op.copies[0]!.to)!
    acks.push({ type: 'ack', user: receiver.id, device: receiver.device, seq: r.seqs[0]! })
  }
  // A turn between commits, as the server has: the tail's move runs in its own.
  const b = performance.now()
  await new Promise((resolve) => setImmediate(resolve))
  longestTurn = Math.max(longestTurn, performance.now() - b)
}
const ms = performance.now() - t0
const cpu = process.cpuUsage(cpu0)
const io = writtenBytes() - io0
await store.close()
rmSync(dir, { recursive: true, force: true })
console.log(
  `batch=${batch} body=${body.length} B: ${Math.round(total / (ms / 1e3))} msgs/s, CPU ${((cpu.user + cpu.system) / total).toFixed(1)} µs/msg ` +
    `(system ${(cpu.system / total).toFixed(1)}), written ${Math.round(io / total)} B/msg, longest commit ${longest.toFixed(1)} ms, ` +
    `longest turn between commits ${longestTurn.toFixed(1)} ms`,
)
