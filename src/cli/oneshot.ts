/**
 * One-shot commands for scripts: `switchboard send`, `inbox`, `history`, `login` and `register`. Those that only
 * send or ask log in SEND_ONLY: beside the device's own session (a chat of the same name keeps running), and
 * handed nothing from the log.
 */
import WebSocket from 'ws'
import { FileCredentialStore } from '../client/credentials.js'
import {
  SwitchboardClient,
  SwitchboardError,
  type ConnectOptions,
  type Target,
  type WebSocketConstructor,
} from '../client/index.js'
import type { ServerFlags } from './commands.js'
import { hhmmss, historyLines, receiptText } from './format.js'
import { passwordFrom } from './secret.js'

/** Exit statuses of `switchboard send`. */
export const SendExit = { DELIVERED: 0, FAILED: 1, STORED: 3, NOT_YET: 4 } as const

/** ConnectOptions from the common flags; the credential file in $SWITCHBOARD_HOME. */
export function connectOptions(flags: ServerFlags, name: string): ConnectOptions {
  const port = Number(flags.port)
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`--port must be a port number, not "${flags.port}"`)
  const o: ConnectOptions = { name, host: flags.host, port, credentials: new FileCredentialStore() }
  if (flags.tls) o.tls = flags.insecure ? { rejectUnauthorized: false } : true
  if (flags.url !== undefined) {
    o.url = flags.url
    // Node 22+ has a global WebSocket; Node 20 uses the `ws` package.
    if ((globalThis as { WebSocket?: unknown }).WebSocket === undefined)
      o.WebSocket = WebSocket as unknown as WebSocketConstructor
  }
  return o
}

/**
 * A readable explanation of a failure to log in. `register` says how this command registers a name that is
 * not known here (the SDK refuses with SB_ERR_NOT_LOGGED_IN when asked never to register).
 */
export function loginError(
  err: unknown,
  name: string,
  server: string,
  register = `switchboard chat ${name} registers it`,
): string {
  if (err instanceof SwitchboardError) {
    if (err.code === 'SB_ERR_NOT_LOGGED_IN')
      return `unknown name "${name}": no account of that name is remembered in ${new FileCredentialStore().path} for ${server}. Names are registered only on purpose: ${register}.`
    if (err.code === 'SB_ERR_NAME_TAKEN')
      return `the name "${name}" is registered by someone else, and there is no token for it in ${new FileCredentialStore().path}. Choose another name.`
    if (err.code === 'SB_ERR_AUTH')
      return `the server ${server} refused the remembered token for "${name}" (this device was revoked, or the account deleted). Log in again with switchboard login ${name} if it has a password, or remove its entry from ${new FileCredentialStore().path} to register again.`
    if (err.code === 'SB_ERR_CONNECT') return `${err.message}. Is the server running (switchboard serve)?`
    return `${err.message} (${err.code})`
  }
  return (err as Error).message
}

export function targetOf(to: string): Target {
  if (to === 'ALL' || to === 'all' || to === '*') return { kind: 'all' }
  if (to.startsWith('topic:')) return { kind: 'topic', topic: to.slice(6) }
  return to
}

/**
 * Why a send was refused, in words. SB_ERR_UNKNOWN_RECIPIENT is also what a sender the recipient blocks is
 * told (the server lets a blocked sender learn nothing, docs/errors.md), so it reads "not delivered".
 */
export function refusalText(err: unknown): string {
  if (!(err instanceof SwitchboardError)) return (err as Error).message
  const code = ` (${err.code}${err.limit ? `, limit ${err.limit}` : ''})`
  if (err.code === 'SB_ERR_UNKNOWN_RECIPIENT')
    return `not delivered: ${err.message} — or a user who does not accept messages from you (the server does not say which)${code}`
  return `${err.message}${code}`
}

export async function runSend(
  flags: ServerFlags & { as: string; to: string; receipt: boolean; timeout: string; register?: boolean },
  text: string,
): Promise<number> {
  let client: SwitchboardClient
  const opts = connectOptions(flags, flags.as)
  try {
    client = await SwitchboardClient.connect({
      ...opts,
      // Only on purpose: a mistyped or renamed --as must not create a new user.
      register: flags.register === true ? undefined : false,
      reconnect: false,
      sendOnly: true,
      receiptTimeoutMs: Number(flags.timeout) || 15_000,
    })
  } catch (err) {
    process.stderr.write(
      `switchboard send: ${loginError(err, flags.as, `${flags.host}:${flags.port}`, 'add --register to register it')}\n`,
    )
    return SendExit.FAILED
  }
  try {
    const r = await client.send(targetOf(flags.to), text, { receipt: flags.receipt })
    if (r.receipt !== undefined) {
      process.stdout.write(`${receiptText(r.receipt)} (${r.receipt.status}) msgId ${r.msgId}\n`)
      if (r.receipt.status === 200 || r.receipt.status === 210) return SendExit.DELIVERED
      if (r.receipt.status === 202) return SendExit.STORED
      if (r.receipt.status === 300) return SendExit.NOT_YET
      return SendExit.FAILED
    }
    switch (r.accepted) {
      case 'delivered':
        process.stdout.write(`sent to ${r.recipients} online (msgId ${r.msgId})\n`)
        return SendExit.DELIVERED
      case 'stored':
        process.stdout.write(`stored for ${flags.to} (msgId ${r.msgId})\n`)
        return SendExit.STORED
      case 'duplicate':
        process.stdout.write(`already accepted earlier (msgId ${r.msgId})\n`)
        return SendExit.DELIVERED
      default:
        // queued or scheduled, and no receipt (not asked for, or it did not come in time)
        process.stdout.write(`${r.accepted ?? 'accepted'}: not delivered yet (msgId ${r.msgId}, ${r.recipients} recipient(s))\n`)
        return flags.receipt ? SendExit.NOT_YET : SendExit.DELIVERED
    }
  } catch (err) {
    process.stderr.write(`switchboard send: refused: ${refusalText(err)}\n`)
    return SendExit.FAILED
  } finally {
    await client.close(500)
  }
}

export async function runInbox(name: string, flags: ServerFlags & { keep?: boolean }): Promise<number> {
  let client: SwitchboardClient
  try {
    client = await SwitchboardClient.connect({ ...connectOptions(flags, name), mode: 'poll', reconnect: false, register: false })
  } catch (err) {
    process.stderr.write(
      `switchboard inbox: ${loginError(err, name, `${flags.host}:${flags.port}`, `switchboard chat ${name} registers it`)}\n`,
    )
    return 1
  }
  let n = 0
  client.on('receipt', (r) => process.stdout.write(`[${hhmmss(r.at)}] receipt for message ${r.msgId}: ${receiptText(r)}\n`))
  try {
    for (;;) {
      const batch = await client.take(100, 'peek')
      if (batch.length === 0) break
      for (const m of batch) {
        const where = m.topic !== undefined ? ` @${m.topic}` : ''
        const body =
          m.file !== undefined
            ? `[file ${m.file.name}, ${m.file.size} bytes, id ${m.file.fileId}]${m.text ? ' ' + m.text : ''}`
            : m.text
        process.stdout.write(`[${hhmmss(m.ts)}] ${m.fromName}${where}: ${body}\n`)
        n++
        if (!flags.keep) client.ack(m.seq)
      }
      // --keep: peeked messages stay queued and are not handed again in this session; one pass is all there is.
      if (flags.keep) break
    }
    if (n === 0) process.stdout.write('(no messages)\n')
    return 0
  } catch (err) {
    process.stderr.write(`switchboard inbox: ${(err as Error).message}\n`)
    return 1
  } finally {
    // A round trip after the ACKs so they are read before we leave (ACK has no reply of its own).
    await client.whoami().catch(() => undefined)
    await client.close(500)
  }
}

/** `switchboard login NAME`: log in with the password, making a new device here; its token is saved. */
export async function runLogin(name: string, flags: ServerFlags & { passwordStdin?: boolean }): Promise<number> {
  const server = flags.url ?? `${flags.host}:${flags.port}`
  let password: string
  try {
    password = await passwordFrom(flags, `password for ${name}: `)
  } catch (err) {
    process.stderr.write(`switchboard login: ${(err as Error).message}\n`)
    return 1
  }
  let client: SwitchboardClient
  try {
    // SEND_ONLY: making the device must not take its messages (the chat that uses the token will).
    client = await SwitchboardClient.connect({ ...connectOptions(flags, name), password, sendOnly: true, reconnect: false })
  } catch (err) {
    const why =
      err instanceof SwitchboardError && err.code === 'SB_ERR_AUTH'
        ? `wrong name or password for "${name}" on ${server} (a user without a password cannot log in with one: set it with /password in a chat)`
        : loginError(err, name, server)
    process.stderr.write(`switchboard login: ${why}\n`)
    return 1
  }
  try {
    const me = (await client.devices()).find((d) => d.current)
    process.stdout.write(
      `logged in as ${client.name} (#${client.id}): this is device ${me?.id ?? '?'}; its token is saved in ${new FileCredentialStore().path}\n`,
    )
    return 0
  } catch (err) {
    process.stderr.write(`switchboard login: ${(err as Error).message}\n`)
    return 1
  } finally {
    await client.close(500)
  }
}

/** `switchboard register NAME`: a new user, its token saved; with --password-stdin, a password too. */
export async function runRegister(name: string, flags: ServerFlags & { passwordStdin?: boolean }): Promise<number> {
  const server = flags.url ?? `${flags.host}:${flags.port}`
  let password: string | undefined
  try {
    if (flags.passwordStdin === true) password = await passwordFrom(flags)
  } catch (err) {
    process.stderr.write(`switchboard register: ${(err as Error).message}\n`)
    return 1
  }
  let client: SwitchboardClient
  try {
    client = await SwitchboardClient.connect({ ...connectOptions(flags, name), register: true, reconnect: false })
  } catch (err) {
    process.stderr.write(`switchboard register: ${loginError(err, name, server)}\n`)
    return 1
  }
  try {
    if (password !== undefined) await client.setPassword(password)
    process.stdout.write(
      `registered ${client.name} (#${client.id})${password !== undefined ? ' with a password' : ''}; its token is saved in ${new FileCredentialStore().path}\n`,
    )
    return 0
  } catch (err) {
    process.stderr.write(`switchboard register: registered ${client.name}, but the password was refused: ${refusalText(err)}\n`)
    return 1
  } finally {
    await client.close(500)
  }
}

/** `switchboard history NAME`: a page of NAME's history (everything, or --with a user or topic), oldest first. */
export async function runHistory(
  name: string,
  flags: ServerFlags & { with?: string; limit: string; before?: string },
): Promise<number> {
  const server = flags.url ?? `${flags.host}:${flags.port}`
  const limit = Number(flags.limit)
  const before = flags.before === undefined ? 0 : Number(flags.before)
  if (!Number.isInteger(limit) || limit < 1 || !Number.isSafeInteger(before) || before < 0) {
    process.stderr.write('switchboard history: --limit takes 1 … 256 and --before a seq\n')
    return 1
  }
  let client: SwitchboardClient
  try {
    client = await SwitchboardClient.connect({
      ...connectOptions(flags, name),
      register: false,
      sendOnly: true,
      reconnect: false,
    })
  } catch (err) {
    process.stderr.write(`switchboard history: ${loginError(err, name, server)}\n`)
    return 1
  }
  try {
    const w = flags.with === undefined ? undefined : targetOf(flags.with)
    const page = await client.history({
      with: w === undefined ? undefined : typeof w === 'string' ? w : w.kind === 'topic' ? { topic: w.topic } : undefined,
      before,
      limit,
    })
    // A sent copy names its recipient by id: the user asked about is known by name.
    const names = new Map<number, string>()
    if (typeof w === 'string') {
      const u = await client.lastSeen(w).catch(() => undefined)
      if (u !== undefined) names.set(u.user.id, u.user.name)
    }
    if (page.messages.length === 0) process.stdout.write('(no messages)\n')
    for (const line of historyLines(page.messages, client.id, names)) process.stdout.write(line + '\n')
    if (page.more) process.stdout.write(`(older messages: --before ${page.messages.at(-1)!.seq})\n`)
    return 0
  } catch (err) {
    process.stderr.write(`switchboard history: ${refusalText(err)}\n`)
    return 1
  } finally {
    await client.close(500)
  }
}
