/**
 * Seed 003 — e-mail and direct chat over ZeroMQ (Python pyzmq original). Pure codec over the text of
 * single-frame ZeroMQ messages; the sockets (REP :5557, PUB :5556) belong to the adapter.
 * Full layout and the choices made: docs/protocol/p003.md.
 *
 *   REQ (client → server)                        REP (server → client)        PUB (server → subscribers)
 *   reg <name>                                   "<addrA> <addrB>"             —
 *   ;; <target> De: <name>\n<text>               ""                            @<target>@ De: <name>\n<text>
 *   # <me> <target> <pull_addr>                  ""                            @<target>@ pedido_conversa <me> <pull_addr>
 *
 * API
 * ```ts
 * parseRequest(msg: Buffer | string): Request            // never throws; anything else → { kind: 'unknown' }
 * encodeRequest(req: KnownRequest): string               // what the original client sends (SDK, tests)
 * registerReply(addrA: string, addrB: string): string    // "<addrA> <addrB>"
 * parseRegisterReply(msg: Buffer | string): [string, string] | null
 * EMPTY_REPLY                                            // ""
 * mailPublication(target, from, text): string            // "@target@ De: from\ntext"
 * conversationPublication(target, from, address): string // "@target@ pedido_conversa from address"
 * parsePublication(msg: Buffer | string): Publication    // SDK, tests
 * topicPrefix(name: string): string                      // "@name@": what a client subscribes to
 * isValidName(name: string): boolean                     // usable as a user or topic name here
 * prefixesClash(a, b): boolean                           // one's SUB filter would match the other's mail
 * prefixName(filter): string | undefined                 // "@name@" → name (XPUB subscriptions)
 * ```
 *
 * UTF-8 policy: pyzmq's recv_string() decodes strictly, so a Buffer that is not valid UTF-8 is never a
 * command: parseRequest returns { kind: 'unknown', text } with U+FFFD in place of the bad bytes.
 * Tokens are split on whitespace like Python's str.split() in the original server; names, targets
 * and addresses cannot contain whitespace.
 */
import { isUtf8 } from 'node:buffer'

/** PUB socket port of the original server. // ORIGINALS.md §003 */
export const PUB_PORT = 5556
/** REP socket port of the original server. // ORIGINALS.md §003 */
export const REP_PORT = 5557
/** The REP body for every request but `reg`. // ORIGINALS.md §003 */
export const EMPTY_REPLY = ''
/** Word that marks a conversation request in a publication. // 003 README "pedido_conversa" */
export const CONVERSATION_WORD = 'pedido_conversa'

export type KnownRequest =
  | { kind: 'register'; name: string }
  | { kind: 'mail'; target: string; from: string; text: string }
  | { kind: 'conversation'; from: string; target: string; address: string }
export type Request = KnownRequest | { kind: 'unknown'; text: string }

export type Publication =
  | { kind: 'mail'; target: string; from: string; text: string }
  | { kind: 'conversation'; target: string; from: string; address: string }
  | { kind: 'unknown'; text: string }

function asText(msg: Buffer | string): { text: string; valid: boolean } {
  if (typeof msg === 'string') return { text: msg, valid: true }
  return { text: msg.toString('utf8'), valid: isUtf8(msg) }
}

// ";; B De: A\nhello" — the first line holds the words, everything after the first newline is the text.
const MAIL = /^;;[ \t]+(\S+)[ \t]+De:[ \t]*(\S+)[ \t]*(?:\r?\n([\s\S]*))?$/
const REGISTER = /^\s*reg\s+(\S+)\s*$/
const CONVERSATION = /^\s*#\s+(\S+)\s+(\S+)\s+(\S+)\s*$/

/** Parse one REQ message. Never throws. */
export function parseRequest(msg: Buffer | string): Request {
  const { text, valid } = asText(msg)
  if (!valid) return { kind: 'unknown', text }
  let m = REGISTER.exec(text)
  if (m) return { kind: 'register', name: m[1] as string }
  m = MAIL.exec(text)
  if (m) return { kind: 'mail', target: m[1] as string, from: m[2] as string, text: m[3] ?? '' }
  m = CONVERSATION.exec(text)
  if (m) return { kind: 'conversation', from: m[1] as string, target: m[2] as string, address: m[3] as string }
  return { kind: 'unknown', text }
}

/** The exact strings the original client sends. */
export function encodeRequest(req: KnownRequest): string {
  switch (req.kind) {
    case 'register':
      return `reg ${req.name}`
    case 'mail':
      return `;; ${req.target} De: ${req.from}\n${req.text}`
    case 'conversation':
      return `# ${req.from} ${req.target} ${req.address}`
  }
}

/** REP to `reg`: two endpoints; the client binds its PULL (direct-chat inbox) on the second. */
export function registerReply(addrA: string, addrB: string): string {
  return `${addrA} ${addrB}`
}

export function parseRegisterReply(msg: Buffer | string): [string, string] | null {
  const m = /^\s*(\S+)\s+(\S+)\s*$/.exec(asText(msg).text)
  return m ? [m[1] as string, m[2] as string] : null
}

/** The SUB prefix a client filters on, for its own name and each topic. // ORIGINALS.md §003 */
export function topicPrefix(name: string): string {
  return `@${name}@`
}

/**
 * A user or topic name must be one non-empty token (the original splits requests on whitespace) that does
 * not start with '@'. The original client asks for an e-mail address, so '@' inside a name is accepted
 * (`ana@mail.com`); because SUB filters on the prefix "@name@", two names clash when one is the other plus
 * "@…" (`ana` and `ana@mail.com`): see prefixesClash, which the adapter checks at registration.
 */
export function isValidName(name: string): boolean {
  return /^[^\s@]\S*$/.test(name)
}

/** True when a SUB filter for one name would also match publications for the other (neither equal). */
export function prefixesClash(a: string, b: string): boolean {
  if (a === b) return false
  const pa = topicPrefix(a)
  const pb = topicPrefix(b)
  return pa.startsWith(pb) || pb.startsWith(pa)
}

/** The name in a SUB filter "@name@" (what an XPUB socket sees subscribed), or undefined for any other filter. */
export function prefixName(filter: Buffer | string): string | undefined {
  const { text, valid } = asText(filter)
  if (!valid) return undefined
  const m = /^@(\S+)@$/.exec(text)
  return m && isValidName(m[1] as string) ? (m[1] as string) : undefined
}

/** PUB for a mail to a user or topic. */
export function mailPublication(target: string, from: string, text: string): string {
  return `${topicPrefix(target)} De: ${from}\n${text}`
}

/** PUB for a direct-conversation request to `target`. */
export function conversationPublication(target: string, from: string, address: string): string {
  return `${topicPrefix(target)} ${CONVERSATION_WORD} ${from} ${address}`
}

const PUB_MAIL = /^@(\S+)@ De: (\S+)\n([\s\S]*)$/
const PUB_CONVERSATION = /^@(\S+)@ pedido_conversa (\S+) (\S+)$/

/** Parse one PUB message (what a subscriber receives). Never throws. */
export function parsePublication(msg: Buffer | string): Publication {
  const { text } = asText(msg)
  let m = PUB_MAIL.exec(text)
  if (m) return { kind: 'mail', target: m[1] as string, from: m[2] as string, text: m[3] as string }
  m = PUB_CONVERSATION.exec(text)
  if (m) return { kind: 'conversation', target: m[1] as string, from: m[2] as string, address: m[3] as string }
  return { kind: 'unknown', text }
}
