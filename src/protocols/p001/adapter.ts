/**
 * Seed 001 gateway adapter: one P001Connection per TCP socket. Frames ⇄ broker calls; the byte layout is
 * the codec's (codec.ts), the choices are written down in docs/protocol/p001.md "Switchboard gateway".
 *
 * - No login frame: the first frame's src names the connection (broker.claim, tokenless). A refused name leaves
 *   the connection open and unnamed (the original client crashes when the server closes): "300" for the frame,
 *   a type 2 notice from "server" saying why, and the next frame tries the name again.
 * - Type 0 to a user is a broker.send with a receipt. The core answers: STORED (recipient offline) and
 *   NOT_YET (no ack within the ack timeout) become "300", DELIVERED becomes "200".
 * - A type 0 pushed to this client is acknowledged by the client's type 1 "200" with the same messageID
 *   and dst = the sender: that is mapped back to broker.ack(seq).
 * - Messages that were queued before this connection named itself (stored while offline) go out as type 2
 *   and, since the client does not answer type 2, are acknowledged as soon as they are written.
 * - Names over 7 bytes (the original client's char[8] C string) are shown as "#<id>", which a 001 client
 *   can answer: dst "#<id>" addresses the user by id. Nothing is ever truncated.
 */
import type { Socket } from 'node:net'
import type { Broker } from '../../core/broker.js'
import { isBrokerError } from '../../core/errors.js'
import type { Session } from '../../core/session.js'
import { ALL_ID, ReceiptStatus, type Message, type Outbound, type Receipt } from '../../core/types.js'
import { GatewayConnection, declineConversation, messageText } from '../gateway-net.js'
import { AnswerCode, FrameType, MAX_NAME_BYTES, MAX_TEXT_BYTES, NAME_FIELD_BYTES, decode, encode, type Frame } from './codec.js'

export const PROTOCOL = 'p001'

export interface P001ConnectionOptions {
  /** Frames per second a connection may send before it is closed as a flood. */
  floodRate: number
  /** Outbound bytes above which the sink tells the broker to pause. */
  highWaterMark: number
}

/**
 * The name a 001 client sees for a user: the name itself when it fits the original client's C string
 * (1..7 bytes), else "#<id>" — reserved by the core (no name starts with '#'), so it can never collide with
 * a real name, and a 001 client can answer it (see resolveDst).
 */
export function wireName(name: string, id: number): string {
  const n = Buffer.byteLength(name, 'utf8')
  if (n >= 1 && n <= MAX_NAME_BYTES) return name
  const alias = `#${id}`
  // Ids up to 9 999 999 fit "#" + 7 digits in the 8-byte field (no NUL: the codec's decoder and encoder
  // take 8-byte names); far beyond what one deployment issues.
  return Buffer.byteLength(alias) <= NAME_FIELD_BYTES ? alias : '#'
}

/** Split UTF-8 text into pieces of at most maxBytes bytes, never inside a character. */
export function splitUtf8(text: string, maxBytes: number): string[] {
  const out: string[] = []
  let cur = ''
  let curBytes = 0
  for (const ch of text) {
    const b = Buffer.byteLength(ch, 'utf8')
    if (curBytes + b > maxBytes) {
      out.push(cur)
      cur = ''
      curBytes = 0
    }
    cur += ch
    curBytes += b
  }
  if (cur !== '' || out.length === 0) out.push(cur)
  return out
}

/** The sender name of the gateway's own notices (a reserved name: no user can have it). */
export const SERVER_NAME = 'server'

export class P001Connection extends GatewayConnection {
  /** The reason last told to this unnamed connection, so a refused client is told once per reason. */
  private toldRefusal = ''
  /** messageID frames pushed as type 0, by "<sender wire name>\0<messageID>", to the seq to acknowledge. */
  private readonly awaiting = new Map<string, number>()

  constructor(
    broker: Broker,
    socket: Socket,
    private readonly opts: P001ConnectionOptions,
    remote: string,
  ) {
    super(PROTOCOL, broker, socket, opts.floodRate, remote)
  }

  // ------------------------------------------------------------ bytes in

  protected consume(): void {
    for (;;) {
      const r = decode(this.buf)
      if (!r.ok) {
        if (r.reason === 'need-more') return
        // No marker to resynchronise on: the stream cannot be trusted any more.
        return this.refuse(`${r.reason} frame: ${r.detail}`)
      }
      this.buf = r.rest
      if (!this.withinFloodLimit('frames')) return
      const frame = r.frame
      this.serially(() => this.handle(frame), 'frame handling failed')
    }
  }

  private async handle(f: Frame): Promise<void> {
    if (this.closed) return
    if (this.session === undefined) {
      if (!(await this.name(f))) return
    }
    const s = this.session!
    if (s.closed) return
    switch (f.type) {
      case FrameType.MESSAGE:
      case FrameType.OFFLINE:
        return this.sendMessage(s, f)
      case FrameType.ANSWER: {
        // The recipient's "200": dst is the original sender, messageID the one it was pushed with.
        if (!f.text.startsWith(AnswerCode.DELIVERED)) return
        const key = `${f.dst}\0${f.messageId}`
        const seq = this.awaiting.get(key)
        if (seq === undefined) return
        this.awaiting.delete(key)
        await this.ackQuietly(s, seq)
        return
      }
      default:
        return this.refuse(`unknown frame type ${f.type}`)
    }
  }

  /**
   * The first frame names the connection. Returns false when the name was refused: then the connection stays
   * open and unnamed, and its next frame tries the name again (it may be free by then).
   */
  private async name(f: Frame): Promise<boolean> {
    return this.claim(
      f.src,
      (err) => this.nameRefused(f, isBrokerError(err) ? err.message : 'internal error'),
      (s) => this.broker.log.debug({ remote: this.remote, name: s.user.name }, 'p001: connection named'),
    )
  }

  /**
   * 001 has no frame that says "name refused", and the original client crashes when the server closes (it
   * reads a header of zeros and then len - 24 bytes). So the connection stays open: the frame is answered "300"
   * (not delivered) if it was type 0, and the reason comes once as a type 2 message from "server", which the
   * original client shows like any stored message and does not answer.
   */
  private nameRefused(f: Frame, why: string): void {
    this.broker.log.warn({ remote: this.remote, name: f.src }, `p001: name "${f.src}" refused: ${why}; the connection stays open`)
    if (f.type === FrameType.MESSAGE) this.answerAs(f.src, f.messageId, f.dst, AnswerCode.NOT_DELIVERED)
    if (this.toldRefusal === why) return
    this.toldRefusal = why
    const text = splitUtf8(
      `The name "${f.src}" is refused: ${why}. Nothing you send is delivered until you use another name.`,
      MAX_TEXT_BYTES,
    )[0]!
    this.write(encode({ type: FrameType.OFFLINE, messageId: 0, src: SERVER_NAME, dst: f.src, text }))
  }

  /** dst → a user: "#<id>" by id, else by name; a name never seen becomes a tokenless user (store for it). */
  private async resolveDst(dst: string): Promise<number | undefined> {
    try {
      const byId = /^#(\d{1,7})$/.exec(dst)
      if (byId) return (await this.broker.findUser({ id: Number(byId[1]) }))?.id
      return ((await this.broker.findUser({ name: dst })) ?? (await this.broker.ensureLegacyUser(dst))).id
    } catch {
      return undefined // an empty or reserved name: nobody can have it
    }
  }

  private async sendMessage(s: Session, f: Frame): Promise<void> {
    const wantsAnswer = f.type === FrameType.MESSAGE
    const notDelivered = (): void => {
      if (wantsAnswer) this.answer(f.messageId, f.dst, AnswerCode.NOT_DELIVERED)
    }
    const to = await this.resolveDst(f.dst)
    if (to === undefined) return notDelivered()
    try {
      // Not idempotent: the original client restarts its messageID at 1 on every run.
      await this.broker.send(s, {
        to: { kind: 'user', id: to },
        body: Buffer.from(f.text, 'utf8'),
        msgId: f.messageId,
        receipt: wantsAnswer,
      })
      // The answer comes from the core as a receipt: STORED (300 at once), DELIVERED (200) or NOT_YET (300).
    } catch (err) {
      if (isBrokerError(err) && err.code === 'SB_ERR_RATE_LIMITED') return this.refuse('flood: rate limited by the broker')
      this.broker.log.warn(
        { remote: this.remote, dst: f.dst, err: isBrokerError(err) ? err.message : err },
        'p001: message refused',
      )
      notDelivered()
    }
  }

  private answer(messageId: number, peer: string, code: AnswerCode): void {
    const me = this.session === undefined ? '' : wireName(this.session.user.name, this.session.user.id)
    this.answerAs(me, messageId, peer, code)
  }

  private answerAs(me: string, messageId: number, peer: string, code: AnswerCode): void {
    this.write(encode({ type: FrameType.ANSWER, messageId: messageId >>> 0, src: peer, dst: me, text: code }))
  }

  // ------------------------------------------------------------ SessionSink

  protected pushTo(s: Session, ev: Outbound): boolean {
    switch (ev.type) {
      case 'message':
        this.deliver(s, ev.msg)
        break
      case 'receipt':
        this.receipt(ev.receipt)
        if (ev.seq !== 0) void this.ackQuietly(s, ev.seq)
        break
      case 'conversation':
        declineConversation(this.broker, s, ev) // 001 has no direct conversations
        break
      default:
        // notices, presence and renames have no 001 form
        break
    }
    return this.socket.writableLength < this.opts.highWaterMark
  }

  private deliver(s: Session, m: Message): void {
    if (m.to === ALL_ID || m.seq === 0) return // 001 has no room; live-only messages have no 001 form
    let text = messageText(m)
    if (m.topic !== undefined) text = `[${m.topic}] ${text}`
    const src = wireName(m.fromName, m.from)
    const dst = wireName(s.user.name, s.user.id)
    const messageId = m.msgId > 0 && m.msgId <= 0xffffffff ? m.msgId : m.seq % 0x1_0000_0000
    // Queued before this connection named itself = stored while offline: type 2, not answered (ORIGINALS §001).
    const stored = m.ts < s.since
    const type = stored ? FrameType.OFFLINE : FrameType.MESSAGE
    // A text longer than one frame goes in several frames with the same messageID; the first "200" acks it.
    for (const piece of splitUtf8(text, MAX_TEXT_BYTES)) this.write(encode({ type, messageId, src, dst, text: piece }))
    if (stored) void this.ackQuietly(s, m.seq)
    else this.awaiting.set(`${src}\0${messageId}`, m.seq)
  }

  private receipt(r: Receipt): void {
    let code: AnswerCode
    switch (r.status) {
      case ReceiptStatus.DELIVERED:
        code = AnswerCode.DELIVERED
        break
      case ReceiptStatus.READ:
        return
      default:
        // STORED (offline), NOT_YET (silent for the ack timeout), EXPIRED, DROPPED, DELETED: not delivered.
        code = AnswerCode.NOT_DELIVERED
    }
    this.answer(r.msgId, wireName(r.recipientName, r.recipient), code)
  }
}
