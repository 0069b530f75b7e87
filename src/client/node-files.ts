/** Node helpers for file transfer: a file on disk as an UploadSource, and a download straight to disk. */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { open, rename, stat, unlink } from 'node:fs/promises'
import { basename, join } from 'node:path'
import {
  SwitchboardError,
  type FileDescriptor,
  type SwitchboardClient,
  type TransferProgress,
  type UploadSource,
} from './client.js'

/** Hash the file first (one streaming pass), then stream it again as the upload: never held in memory. */
export async function fileSource(path: string, name = basename(path)): Promise<UploadSource> {
  const st = await stat(path)
  if (!st.isFile()) throw new Error(`${path} is not a file`)
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return {
    name,
    size: st.size,
    sha256: hash.digest('hex'),
    chunks: (async function* () {
      for await (const chunk of createReadStream(path, { highWaterMark: 64 * 1024 })) yield chunk as Buffer
    })(),
  }
}

/**
 * Download a file into `dir` under its own name (a numbered name when one exists), checking size and
 * SHA-256. Written to a .part file first so a cut download leaves no half file under the real name.
 */
export async function downloadToFile(
  client: SwitchboardClient,
  fileId: string,
  dir: string,
  onProgress?: (p: TransferProgress) => void,
): Promise<{ path: string; file: FileDescriptor }> {
  const tmp = join(dir, `.${fileId.replace(/[^A-Za-z0-9_-]/g, '_')}.part`)
  const fh = await open(tmp, 'w')
  const hash = createHash('sha256')
  let size = 0
  let file: FileDescriptor
  try {
    file = await client.download(
      fileId,
      async (chunk) => {
        hash.update(chunk)
        size += chunk.length
        await fh.write(chunk)
      },
      onProgress ? { onProgress } : {},
    )
    await fh.sync()
  } catch (err) {
    await fh.close()
    await unlink(tmp).catch(() => undefined)
    throw err
  }
  await fh.close()
  const sha = hash.digest('hex')
  if (size !== file.size || (file.sha256 !== '' && sha !== file.sha256)) {
    await unlink(tmp).catch(() => undefined)
    throw new SwitchboardError('SB_ERR_FILE_CHECK', `the download of ${file.name} does not match its size or SHA-256`)
  }
  const safe = basename(file.name).replace(/^\.+/, '_') || fileId
  let path = join(dir, safe)
  for (let i = 1; await exists(path); i++) {
    const dot = safe.lastIndexOf('.')
    path = join(dir, dot > 0 ? `${safe.slice(0, dot)} (${i})${safe.slice(dot)}` : `${safe} (${i})`)
  }
  await rename(tmp, path)
  return { path, file }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p)
    return true
  } catch {
    return false
  }
}
