/**
 * Issue 13 finding 2: does reassembling a frame cost more the smaller the pieces it arrives in? `--conns` logged-in
 * native clients (Nagle off) each send one `--size`-byte SEND frame `--chunk` bytes per write, each write followed
 * by a turn of this process's event loop (setImmediate, `--gap 0`) or a timer (`--gap MS`), so that the writes leave
 * one by one (with `--gap 0` the server may still read several at once when it falls behind); the server must decode
 * it and answer (an ERROR: there is no such recipient). Logged in, because before login the fixed server takes
 * only small frames (maxPreLoginFrameBytes).
 *
 * Prints the server's CPU seconds (utime + stime from /proc/<pid>/stat) from the first write to the last answer,
 * the wall time, and this process's own CPU for comparison.
 *
 *   node --import tsx bench/probes/hostile/reassembly.ts --conns 4 --size 1048576 --chunk 16 --runs 3
 *   node --import tsx bench/probes/hostile/reassembly.ts --conns 4 --size 262144 --chunk 1
 *   node --import tsx bench/probes/hostile/reassembly.ts --conns 4 --size 1048576 --chunk 32 --gap 1
 */
import { parseArgs } from 'node:util'
import { encode } from '../../../src/protocols/native/codec.js'
import { NativeClient } from '../../../test/helpers/native-client.js'
import { cpuSeconds, repeat, round, startServer, type Figures } from './common.js'

const { values } = parseArgs({
  options: {
    conns: { type: 'string', default: '4' },
    size: { type: 'string', default: String(1024 * 1024) },
    chunk: { type: 'string', default: '16' },
    gap: { type: 'string', default: '0' },
    runs: { type: 'string', default: '1' },
  },
})
const CONNS = Number(values.conns)
const SIZE = Number(values.size)
const CHUNK = Number(values.chunk)
const GAP = Number(values.gap)

/** Between two writes of a connection: a turn of the event loop (`--gap 0`), or a timer of `--gap` ms. */
const turn = (): Promise<void> => new Promise((r) => (GAP > 0 ? setTimeout(r, GAP) : setImmediate(r)))

async function measure(): Promise<Figures> {
  const s = await startServer(['--http-port', '-1', '--max-frame-bytes', String(SIZE + 1024), '--max-text-bytes', String(SIZE)])
  try {
    const clients: NativeClient[] = []
    for (let i = 0; i < CONNS; i++) {
      const c = await NativeClient.connect(s.port)
      await c.register(`dribble${i}x${process.pid}`)
      c.socket.setNoDelay(true)
      clients.push(c)
    }
    const frame = encode({
      type: 'SEND',
      corr: 99,
      msgId: 1,
      to: { kind: 'name', name: 'nobody-at-all' },
      kind: 0,
      flags: 0,
      ttlMs: 0,
      notBefore: 0,
      body: Buffer.alloc(SIZE, 97),
    })
    const cpu0 = cpuSeconds(s.pid)
    const own0 = process.cpuUsage()
    const t0 = performance.now()
    const answers: string[] = []
    await Promise.all(
      clients.map(async (c) => {
        for (let o = 0; o < frame.length; o += CHUNK) {
          c.socket.write(frame.subarray(o, o + CHUNK))
          await turn()
        }
        const answer = await c.next((f) => f.corr === 99, 300_000, 'the answer to the big SEND')
        answers.push(answer.type === 'ERROR' ? `ERROR ${answer.code}` : answer.type)
      }),
    )
    const wall = (performance.now() - t0) / 1000
    const serverCpu = cpuSeconds(s.pid) - cpu0
    const own = process.cpuUsage(own0)
    for (const c of clients) c.destroy()
    console.log(`# answers: ${answers.join(', ')}`)
    return {
      frames: CONNS,
      frameBytes: frame.length,
      writesPerFrame: Math.ceil(frame.length / CHUNK),
      serverCpuSeconds: round(serverCpu, 2),
      wallSeconds: round(wall, 2),
      probeCpuSeconds: round((own.user + own.system) / 1e6, 2),
    }
  } finally {
    await s.stop()
  }
}

await repeat(
  `finding 2: ${CONNS} × ${SIZE}-byte frames, ${CHUNK} byte(s) per write, ${GAP > 0 ? `${GAP} ms timer` : 'a loop turn'} between writes, after login`,
  Number(values.runs),
  measure,
)
process.exit(0)
