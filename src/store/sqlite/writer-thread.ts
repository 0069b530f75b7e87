/**
 * The main thread's side of the writer thread (writer.ts): it starts the worker on the store's file, sends
 * batches (several may be on their way) and settles each one's promise with its answer, in order. An error keeps the SQLite code (SQLITE_FULL …) so
 * that the store maps it as it maps its own. The worker runs the compiled writer.js beside this file, or, when
 * the server runs from the TypeScript sources, writer.ts through tsx's loader (registered in the worker).
 */
import { Worker } from 'node:worker_threads'
import { once } from 'node:events'
import type { BatchWriter, WriterBatch, WriterReply } from './writer-batch.js'

function startWorker(path: string): Worker {
  const here = import.meta.url
  if (!here.endsWith('.ts')) return new Worker(new URL('./writer.js', here), { workerData: { path } })
  const tsx = import.meta.resolve('tsx/esm/api')
  const writer = new URL('./writer.ts', here).href
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(writer)}) })`
  return new Worker(boot, { eval: true, workerData: { path } })
}

/** Starts the writer on `path` and resolves once it has opened the file. */
export async function startWriterThread(path: string): Promise<BatchWriter> {
  const worker = startWorker(path)
  type Waiter = { resolve: () => void; reject: (err: Error) => void }
  const waiting: Waiter[] = []
  let failed: Error | undefined
  const fail = (err: Error): void => {
    failed ??= err
    for (const w of waiting.splice(0)) w.reject(err)
  }
  worker.on('error', fail)
  worker.on('exit', (code) => fail(new Error(`the SQLite writer thread exited (code ${code})`)))
  const ready = new Promise<void>((resolve, reject) => waiting.push({ resolve, reject }))
  worker.on('message', (r: WriterReply) => {
    const w = waiting.shift()
    if (w === undefined) return
    if (r.ok) w.resolve()
    else w.reject(Object.assign(new Error(r.message), r.code === undefined ? {} : { code: r.code }))
  })
  await ready
  return {
    write(b: WriterBatch): Promise<void> {
      if (failed !== undefined) return Promise.reject(failed)
      const p = new Promise<void>((resolve, reject) => waiting.push({ resolve, reject }))
      worker.postMessage(b, [b.bodies])
      return p
    },
    reset(): void {
      if (failed === undefined) worker.postMessage({ reset: true })
    },
    async close(): Promise<void> {
      if (failed !== undefined) return
      const exited = once(worker, 'exit')
      worker.postMessage({ close: true })
      await exited
    },
  }
}
