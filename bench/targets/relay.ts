/**
 * The ceiling: a bare relay (relay-server.ts) driven by the same load generator. Not a peer: the harness shows
 * the other targets' throughput as a fraction of it. The direct-style scenarios, and idle (what a bare Node socket
 * costs beside Switchboard's logged-in connection); "accepted" = the relay's
 * ACK, written as soon as it has forwarded the frame.
 */
import { fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import type { BenchClient, BenchTarget, MessageKind, TargetFactory } from './target.js'
import { tsxExecArgv, waitForExit } from '../lib/spawn.js'

const HELLO = 0
const ROUTE = 1
const DATA = 2
const ACK = 3

function frame(type: number, payload: Buffer): Buffer {
  const b = Buffer.allocUnsafe(5 + payload.length)
  b.writeUInt32BE(1 + payload.length, 0)
  b[4] = type
  payload.copy(b, 5)
  return b
}

export const relayTarget: TargetFactory = (params): BenchTarget => {
  let child: ChildProcess | undefined
  return {
    name: 'relay',
    semantics: 'bare Node relay of length-prefixed frames (the ceiling): ack = relay forwarded it; nothing stored',
    scenarios: ['direct', 'deep', 'pair2k', 'latency', 'idle'],
    params: () => params,
    serverPid: () => child?.pid,
    start: () =>
      new Promise<void>((resolve, reject) => {
        const c = fork(fileURLToPath(new URL('./relay-server.ts', import.meta.url)), [], {
          execArgv: tsxExecArgv(),
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        })
        child = c
        const timer = setTimeout(() => {
          c.kill('SIGKILL')
          reject(new Error('relay: no listening report within 15 s'))
        }, 15_000)
        c.once('message', (m: unknown) => {
          clearTimeout(timer)
          const port = (m as { port?: unknown }).port
          if (typeof port !== 'number') reject(new Error('relay: bad start message'))
          else {
            params.port = port
            resolve()
          }
        })
        c.once('exit', (code) => {
          clearTimeout(timer)
          reject(new Error(`relay exited early with code ${String(code)}`))
        })
      }),
    stop: async () => {
      const c = child
      child = undefined
      if (c === undefined) return
      c.kill('SIGTERM')
      if (!(await waitForExit(c, 5000))) {
        c.kill('SIGKILL')
        await waitForExit(c, 2000)
      }
    },
    connect: (id) =>
      new Promise<BenchClient>((resolve, reject) => {
        const sock = net.connect(params.port, params.host)
        sock.setNoDelay(true)
        const acks: Array<{ resolve: () => void; reject: (e: Error) => void }> = []
        let route: string | undefined
        let pending: Buffer | undefined
        let onMsg: (kind: MessageKind, body: Buffer) => void = () => {}
        let corked = false
        const write = (b: Buffer): void => {
          if (!corked) {
            corked = true
            sock.cork()
            process.nextTick(() => {
              corked = false
              sock.uncork()
            })
          }
          sock.write(b)
        }
        const client: BenchClient = {
          id,
          sendDirect(to, body) {
            return new Promise<void>((res, rej) => {
              if (route !== to) {
                route = to
                write(frame(ROUTE, Buffer.from(to)))
              }
              acks.push({ resolve: res, reject: rej })
              write(frame(DATA, body))
            })
          },
          publishBroadcast: () => Promise.reject(new Error('relay: no broadcast')),
          onMessage(cb) {
            onMsg = cb
          },
          close: () =>
            new Promise<void>((res) => {
              sock.once('close', () => res())
              sock.end()
              setTimeout(() => sock.destroy(), 1000).unref()
            }),
        }
        // The first ACK answers HELLO: the relay knows this id from then on.
        acks.push({ resolve: () => resolve(client), reject })
        sock.on('data', (chunk: Buffer) => {
          const buf = pending === undefined ? chunk : Buffer.concat([pending, chunk])
          pending = undefined
          let off = 0
          while (buf.length - off >= 5) {
            const len = buf.readUInt32BE(off)
            if (buf.length - off - 4 < len) break
            const type = buf[off + 4]
            if (type === ACK) acks.shift()?.resolve()
            else if (type === DATA) onMsg('direct', buf.subarray(off + 5, off + 4 + len))
            off += 4 + len
          }
          if (off < buf.length) pending = buf.subarray(off)
        })
        const fail = (err: Error): void => {
          for (const a of acks.splice(0)) a.reject(err)
        }
        sock.on('error', fail)
        sock.on('close', () => fail(new Error('relay: connection closed')))
        sock.on('connect', () => write(frame(HELLO, Buffer.from(id))))
      }),
  }
}
