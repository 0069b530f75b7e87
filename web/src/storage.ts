/**
 * What the page keeps in localStorage: the token of each name used on this server (so a reload or a
 * later visit logs in again instead of registering), which name was used last, and a short history per
 * conversation (the server hands a message over once; after the ACK it is the page's to remember).
 */
import type { CredentialStore, Credentials } from '../../src/client/client.js'
import type { ChatMessage } from './chat.js'

const CREDS_KEY = 'switchboard.credentials.v1'
const LAST_KEY = 'switchboard.last.v1'
const HISTORY_PREFIX = 'switchboard.history.v1.'
/** Per conversation: enough to scroll back a while, small enough for localStorage's ~5 MB. */
const HISTORY_KEEP = 200

type CredsShape = Record<string, Record<string, Credentials>>

function readJson<T>(key: string, fallback: T): T {
  try {
    const raw = localStorage.getItem(key)
    return raw === null ? fallback : (JSON.parse(raw) as T)
  } catch {
    // private mode or a damaged entry: start empty rather than break the page
    return fallback
  }
}

function writeJson(key: string, value: unknown): void {
  try {
    localStorage.setItem(key, JSON.stringify(value))
  } catch {
    // quota exceeded or storage disabled: the session works, it is just not remembered
  }
}

/** The SDK's credential store over localStorage, keyed by server URL then name. */
export class LocalCredentialStore implements CredentialStore {
  get(server: string, name: string): Credentials | undefined {
    return readJson<CredsShape>(CREDS_KEY, {})[server]?.[name]
  }
  set(server: string, creds: Credentials, previousName?: string): void {
    const all = readJson<CredsShape>(CREDS_KEY, {})
    const byName = (all[server] ??= {})
    if (previousName !== undefined && previousName !== creds.name) delete byName[previousName]
    byName[creds.name] = creds
    writeJson(CREDS_KEY, all)
    writeJson(LAST_KEY, { server, name: creds.name })
  }
  delete(server: string, name: string): void {
    const all = readJson<CredsShape>(CREDS_KEY, {})
    delete all[server]?.[name]
    writeJson(CREDS_KEY, all)
  }
}

/** The name last logged in on this server, if its token is still known. */
export function lastLogin(server: string): Credentials | undefined {
  const last = readJson<{ server?: string; name?: string }>(LAST_KEY, {})
  if (last.server !== server || last.name === undefined) return undefined
  return new LocalCredentialStore().get(server, last.name)
}

export function forgetLast(): void {
  try {
    localStorage.removeItem(LAST_KEY)
  } catch {
    // nothing to forget
  }
}

export function loadHistory(server: string, userId: number): Record<string, ChatMessage[]> {
  return readJson<Record<string, ChatMessage[]>>(`${HISTORY_PREFIX}${server}.${userId}`, {})
}

export function saveHistory(server: string, userId: number, convs: Record<string, ChatMessage[]>): void {
  const trimmed: Record<string, ChatMessage[]> = {}
  for (const [k, list] of Object.entries(convs))
    trimmed[k] = list
      .slice(-HISTORY_KEEP)
      // progress is a moment's state; a reload must not show a transfer stuck half way
      .map((m) => ({ ...m, progress: undefined }))
  writeJson(`${HISTORY_PREFIX}${server}.${userId}`, trimmed)
}
