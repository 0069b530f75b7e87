/**
 * Remembered credentials (Node only): one JSON file, `$SWITCHBOARD_HOME/credentials.json` (default
 * ~/.switchboard), mode 0600 in a 0700 folder, keyed by server then name. A token is a password: it is
 * never logged and the file is replaced atomically so a crash cannot leave half of it.
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import type { CredentialStore, Credentials } from './client.js'

interface FileShape {
  version: 1
  servers: Record<string, Record<string, Credentials & { savedAt: number }>>
}

/** The folder for client state: $SWITCHBOARD_HOME, else ~/.switchboard. */
export function switchboardHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.SWITCHBOARD_HOME ?? join(homedir(), '.switchboard')
}

export class FileCredentialStore implements CredentialStore {
  readonly path: string

  constructor(path?: string) {
    this.path = path ?? join(switchboardHome(), 'credentials.json')
  }

  private read(): FileShape {
    let raw: string
    try {
      raw = readFileSync(this.path, 'utf8')
    } catch {
      return { version: 1, servers: {} }
    }
    try {
      const v = JSON.parse(raw) as FileShape
      if (typeof v === 'object' && v !== null && typeof v.servers === 'object' && v.servers !== null) return v
    } catch {
      // a damaged file is treated as empty rather than stopping the client; it is rewritten on the next save
    }
    return { version: 1, servers: {} }
  }

  private write(data: FileShape): void {
    const dir = join(this.path, '..')
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const tmp = `${this.path}.${process.pid}.tmp`
    writeFileSync(tmp, JSON.stringify(data, null, 2) + '\n', { mode: 0o600 })
    chmodSync(tmp, 0o600)
    renameSync(tmp, this.path)
  }

  get(server: string, name: string): Credentials | undefined {
    const c = this.read().servers[server]?.[name.normalize('NFC')]
    if (c === undefined || typeof c.token !== 'string' || typeof c.id !== 'number') return undefined
    return { id: c.id, name: c.name, token: c.token }
  }

  set(server: string, creds: Credentials, previousName?: string): void {
    const data = this.read()
    const byName = (data.servers[server] ??= {})
    if (previousName !== undefined && previousName !== creds.name) delete byName[previousName.normalize('NFC')]
    byName[creds.name.normalize('NFC')] = { id: creds.id, name: creds.name, token: creds.token, savedAt: Date.now() }
    this.write(data)
  }

  delete(server: string, name: string): void {
    const data = this.read()
    const byName = data.servers[server]
    if (byName === undefined) return
    delete byName[name.normalize('NFC')]
    this.write(data)
  }
}
