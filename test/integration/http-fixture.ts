/**
 * A real broker (SQLite file in a temp dir) behind a real HTTP listener on 127.0.0.1:0, for the http-*
 * tests, and a small fetch wrapper that returns status, headers and the parsed body.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { TestContext } from 'node:test'
import { Broker, type BrokerOptions } from '../../src/core/broker.js'
import { FileService } from '../../src/core/files.js'
import { FsBlobStore } from '../../src/store/blob/fs-blob-store.js'
import { SqliteFileMeta } from '../../src/store/sqlite/sqlite-file-meta.js'
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js'
import { LocalBus } from '../../src/bus/local/local-bus.js'
import type { Limits } from '../../src/core/types.js'
import type { NativeOptions } from '../../src/protocols/native/adapter.js'
import { startHttp, type HttpOptions, type HttpServer } from '../../src/protocols/http/index.js'

export const nativeOptions: NativeOptions = {
  maxFrameBytes: 1024 * 1024,
  heartbeatMs: 30_000,
  highWaterMark: 1024 * 1024,
  loginTimeoutMs: 5000,
  serverName: 'switchboard-test',
}

export interface Res {
  status: number
  headers: Headers
  body: any
  text: string
}

export interface Fixture {
  broker: Broker
  /** The broker's store (a test may slow a call down, as a store with a network round trip would be). */
  store: SqliteStore
  http: HttpServer
  base: string
  dir: string
  files: FileService | undefined
  api(method: string, path: string, body?: unknown, token?: string, headers?: Record<string, string>): Promise<Res>
  register(name: string): Promise<{ id: number; name: string; token: string }>
}

export interface FixtureOptions {
  limits?: Partial<Limits>
  broker?: Partial<Omit<BrokerOptions, 'bus'>>
  http?: Partial<HttpOptions>
  files?: boolean
}

export async function startFixture(t: TestContext, o: FixtureOptions = {}): Promise<Fixture> {
  const dir = fs.mkdtempSync(os.tmpdir() + '/sb-')
  const store = new SqliteStore({ path: path.join(dir, 'db.sqlite') })
  const broker = new Broker({ store, bus: new LocalBus(), limits: o.limits ?? {}, ...o.broker })
  await broker.start()
  let files: FileService | undefined
  if (o.files) {
    const meta = new SqliteFileMeta({ path: path.join(dir, 'db.sqlite') })
    files = new FileService({ blobs: new FsBlobStore({ dir: path.join(dir, 'files') }), meta, broker })
    await files.start()
  }
  const http = await startHttp(broker, {
    host: '127.0.0.1',
    port: 0,
    nativeOptions,
    processMetrics: false,
    webRoot: path.join(dir, 'no-web'),
    files,
    ...o.http,
  })
  t.after(async () => {
    await http.close()
    await files?.close()
    await broker.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })
  const base = `http://127.0.0.1:${http.address.port}`
  const api = async (
    method: string,
    p: string,
    body?: unknown,
    token?: string,
    headers: Record<string, string> = {},
  ): Promise<Res> => {
    const h: Record<string, string> = { ...headers }
    if (body !== undefined) h['content-type'] ??= 'application/json'
    if (token !== undefined) h.authorization = `Bearer ${token}`
    const init: RequestInit = { method, headers: h }
    if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body)
    const r = await fetch(base + p, init)
    const text = await r.text()
    let parsed: unknown = text
    try {
      parsed = JSON.parse(text)
    } catch {
      // not JSON
    }
    return { status: r.status, headers: r.headers, body: parsed, text }
  }
  const register = async (name: string) => {
    const r = await api('POST', '/v1/register', { name })
    if (r.status !== 201) throw new Error(`register ${name}: ${r.status} ${r.text}`)
    return r.body as { id: number; name: string; token: string }
  }
  return { broker, store, http, base, dir, files, api, register }
}

/** Reads a text/event-stream response into events, for tests to wait on. */
export class SseReader {
  readonly events: { event: string; id?: string; data: any }[] = []
  private buf = ''
  private waiters: (() => void)[] = []
  closed = false
  private constructor(private readonly ac: AbortController) {}

  static async open(url: string, token?: string): Promise<{ status: number; reader: SseReader; headers: Headers }> {
    const ac = new AbortController()
    const r = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: ac.signal })
    const reader = new SseReader(ac)
    if (r.body !== null && r.status === 200) void reader.pump(r.body)
    else reader.closed = true
    return { status: r.status, reader, headers: r.headers }
  }

  private async pump(body: ReadableStream<Uint8Array>): Promise<void> {
    const dec = new TextDecoder()
    try {
      for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
        this.buf += dec.decode(chunk, { stream: true })
        let i: number
        while ((i = this.buf.indexOf('\n\n')) >= 0) {
          const block = this.buf.slice(0, i)
          this.buf = this.buf.slice(i + 2)
          const ev: { event: string; id?: string; data: any } = { event: 'message', data: undefined }
          let data = ''
          let any = false
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue
            const [k, ...rest] = line.split(':')
            const v = rest.join(':').replace(/^ /, '')
            if (k === 'event') ev.event = v
            else if (k === 'id') ev.id = v
            else if (k === 'data') data += v
            else continue
            any = true
          }
          if (!any || data === '') continue
          ev.data = JSON.parse(data)
          this.events.push(ev)
        }
        for (const w of this.waiters.splice(0)) w()
      }
    } catch {
      // aborted
    }
    this.closed = true
    for (const w of this.waiters.splice(0)) w()
  }

  async waitFor(
    pred: (e: { event: string; id?: string; data: any }) => boolean,
    ms = 3000,
  ): Promise<{ event: string; id?: string; data: any }> {
    const deadline = Date.now() + ms
    for (;;) {
      const e = this.events.find(pred)
      if (e !== undefined) return e
      if (this.closed) throw new Error(`stream closed; events: ${JSON.stringify(this.events)}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out; events: ${JSON.stringify(this.events)}`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(t)
          resolve()
        })
      })
    }
  }

  close(): void {
    this.ac.abort()
  }
}
