/** Inputs that crash, hang or run slow, saved as <dir>/<target>/<kind>-<sha1>.bin with a .txt beside it. */
import { createHash } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export function saveFinding(dir: string, target: string, kind: string, input: Buffer, note: string): string {
  const sub = join(dir, target)
  mkdirSync(sub, { recursive: true })
  const id = createHash('sha1').update(input).digest('hex').slice(0, 16)
  const file = join(sub, `${kind}-${id}.bin`)
  writeFileSync(file, input)
  writeFileSync(join(sub, `${kind}-${id}.txt`), `${note}\n\nhex: ${input.toString('hex')}\n`)
  return file
}
