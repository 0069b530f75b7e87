/**
 * What an fsync costs on this disk (issue 12 aim 6, the ceiling): append a small block to a file and
 * fdatasync it, many times, as the store's group commit does once per batch. Synchronous and short (a few
 * hundred ms on an SSD); the file is removed afterwards.
 *
 *   node --import tsx bench/lib/fsync.ts [dir]     # default: os.tmpdir(), where the bench puts the servers' data
 */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { percentile } from './stats.js'

export interface FsyncProbe {
  dir: string
  bytes: number
  samples: number
  p50Ms: number
  p99Ms: number
  maxMs: number
}

export function fsyncProbe(dir = tmpdir(), samples = 500, bytes = 4096): FsyncProbe {
  const d = mkdtempSync(join(dir, 'sb-fsync-'))
  const fd = openSync(join(d, 'probe'), 'a')
  const block = Buffer.alloc(bytes, 0x5a)
  const ms: number[] = []
  try {
    for (let i = 0; i < samples; i++) {
      writeSync(fd, block)
      const t0 = performance.now()
      fdatasyncSync(fd)
      ms.push(performance.now() - t0)
    }
  } finally {
    closeSync(fd)
    rmSync(d, { recursive: true, force: true })
  }
  const r3 = (x: number): number => Math.round(x * 1000) / 1000
  return { dir, bytes, samples, p50Ms: r3(percentile(ms, 50)), p99Ms: r3(percentile(ms, 99)), maxMs: r3(Math.max(...ms)) }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log(fsyncProbe(process.argv[2]))
