/**
 * Switchboard, started by the harness as `switchboard serve` in its own process, on its real embedded
 * store (SQLite, WAL, synchronous=FULL: every acknowledged message is fsynced by group commit) in a
 * temporary data directory. Clients speak the native protocol through the project's own codec.
 *
 * direct: SEND to the partner's name; the promise settles on ACCEPTED, which the server sends only once
 * the message is durable. The receiver ACKs every DELIVER, so each message is also removed from its queue
 * (a second durable write) — like a QoS 1 subscriber's PUBACK.
 * broadcast: SEND to ALL (the room: live, not stored), resolved when written to the socket.
 */
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { ALL_ID } from '../../src/core/types.js'
import { encode, FrameReader } from '../../src/protocols/native/codec.js'
import type { Frame } from '../../src/protocols/native/frames.js'
import type { BenchClient, BenchTarget, MessageKind, TargetFactory } from './target.js'
import { waitForExit } from '../lib/spawn.js'
import { spawnServer } from '../../scripts/spawn-server.js'

export const switchboardTarget: TargetFactory = (params): BenchTarget => {
  let child: ChildProcess | undefined
  let dataDir: string | undefined
  const userName = (id: string): string => `b${params.runId.slice(-6)}${id}`.replace(/[^A-Za-z0-9_-]/g, '').slice(0, 25)

  return {
    name: 'switchboard',
    semantics: 'direct: ACCEPTED once fsynced (group commit), receiver ACKs each; broadcast: room, live',
    params: () => params,
    serverPid: () => child?.pid,
    start: async () => {
      dataDir = mkdtempSync(tmpdir() + '/sb-bench-')
      const started = await spawnServer(
        [
          ...['--port', '0', '--http-port', '-1', '--data-dir', dataDir],
          ...['--log-level', 'warn', '--log-format', 'json', '--max-queue-length', '1000000', '--rate', '1000000'],
        ],
        { onStderr: (d) => process.stderr.write(d) },
      )
      child = started.child
      params.port = started.port
    },
    stop: async () => {
      const c = child
      child = undefined
      if (c !== undefined) {
        c.kill('SIGTERM')
        if (!(await waitForExit(c, 5000))) {
          c.kill('SIGKILL')
          await waitForExit(c, 2000)
        }
      }
      if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true })
    },
    connect: (id, _opts) =>
      new Promise<BenchClient>((resolve, reject) => {
        const sock = net.connect(params.port, params.host)
        sock.setNoDelay(true)
        const reader = new FrameReader(16 * 1024 * 1024)
        const pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>()
        let corr = 1
        let msgId = 1
        let onMsg: (kind: MessageKind, body: Buffer) => void = () => {}
        let corked = false
        const write = (f: Frame): void => {
          if (!corked) {
            corked = true
            sock.cork()
            process.nextTick(() => {
              corked = false
              sock.uncork()
            })
          }
          sock.write(encode(f))
        }
        const client: BenchClient = {
          id,
          sendDirect(to, body) {
            return new Promise<void>((res, rej) => {
              const c = corr++
              pending.set(c, { resolve: res, reject: rej })
              write({
                type: 'SEND',
                corr: c,
                msgId: msgId++,
                to: { kind: 'name', name: userName(to) },
                kind: 0,
                flags: 0,
                ttlMs: 0,
                notBefore: 0,
                body,
              })
            })
          },
          publishBroadcast(body) {
            write({ type: 'SEND', corr: 0, msgId: 0, to: { kind: 'all' }, kind: 0, flags: 0, ttlMs: 0, notBefore: 0, body })
            return Promise.resolve()
          },
          onMessage(cb) {
            onMsg = cb
          },
          // Deleting the account frees the name for the next measurement, which connects the same ids again.
          close: () =>
            new Promise<void>((res) => {
              sock.once('close', () => res())
              write({ type: 'REQUEST', corr: corr++, op: 5, arg: '' })
              setTimeout(() => sock.destroy(), 1000).unref()
            }),
        }
        sock.on('data', (chunk: Buffer) => {
          for (const d of reader.push(chunk)) {
            if (!d.ok) {
              if (d.reason !== 'need-more') sock.destroy(new Error(`bad frame from server: ${d.reason}`))
              continue
            }
            const f = d.frame
            switch (f.type) {
              case 'WELCOME':
                resolve(client)
                break
              case 'DELIVER':
                if (f.msg.seq !== 0) write({ type: 'ACK', corr: 0, seq: f.msg.seq })
                onMsg(f.msg.to === ALL_ID ? 'broadcast' : 'direct', f.msg.body)
                break
              case 'ACCEPTED':
                pending.get(f.corr)?.resolve()
                pending.delete(f.corr)
                break
              case 'ERROR': {
                const p = pending.get(f.corr)
                const err = new Error(`switchboard error ${f.code}: ${f.message}`)
                if (p !== undefined) {
                  pending.delete(f.corr)
                  p.reject(err)
                } else if (f.corr === 1) reject(err)
                break
              }
            }
          }
        })
        sock.on('error', (err) => {
          for (const p of pending.values()) p.reject(err)
          pending.clear()
          reject(err)
        })
        sock.on('connect', () => write({ type: 'REGISTER', corr: corr++, version: 1, flags: 0, name: userName(id) }))
      }),
  }
}
