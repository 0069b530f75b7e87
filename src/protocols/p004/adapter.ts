/**
 * Seed 004 gateway adapter: one P004Connection per TCP socket. The chat room is Switchboard's ALL; files go
 * through the core's FileService. Choices: docs/protocol/p004.md "Switchboard gateway".
 *
 * Inbound is one sequential loop per connection (packets, and after a file packet its raw bytes, which are
 * streamed into the upload — or drained when the file is refused — never buffered whole). The socket is
 * paused while the loop waits on the broker or the disk.
 *
 * Outbound is a paced queue: the original client assumes one recv() starts exactly one packet, so every
 * packet is one write and consecutive writes to one client are `paceMs` apart; a file's raw bytes are
 * streamed from the file store after a pause following the header. The original then sleeps a second
 * (fileReadMs) before it reads the file with recv(1024) until it has the announced size, saving all it got:
 * a notice already there would be saved into the file. So the notice waits until fileReadMs + fileSettleMs
 * after the header, and fileSettleMs after the file's last byte, whichever is later.
 */
import type { Socket } from 'node:net'
import type { Broker } from '../../core/broker.js'
import { encodeOnce } from '../encode-once.js'
import { isBrokerError } from '../../core/errors.js'
import { decodeFileMessage, type FileService, type Upload } from '../../core/files.js'
import type { Session } from '../../core/session.js'
import { ALL_ID, type CloseReason, type Message, type Outbound } from '../../core/types.js'
import { GatewayConnection, declineConversation } from '../gateway-net.js'
import {
  NAME_IN_USE_TEXT,
  PacketType,
  WELCOME_TEXT,
  decodeClient,
  encodePacket,
  encodeServer,
  hhmm,
  notice,
  takeRaw,
  type ClientMessage,
  type Limits,
} from './codec.js'

export const PROTOCOL = 'p004'
/** Marks a message that was sent to this user alone, since 004 only knows the room. */
export const DIRECT_PREFIX = '(direct) '

export interface P004ConnectionOptions {
  files: FileService | undefined
  floodRate: number
  /** Pause between two writes to the same client. */
  paceMs: number
  /** The original client sleeps this long after a file's header before it reads the file's bytes. */
  fileReadMs: number
  /** Margin after that sleep, and after a file's last byte, before the notice that follows a file. */
  fileSettleMs: number
  /** A user is announced "connected" only once it has stayed this long (a one-shot send never is). */
  presenceSettleMs: number
  /** A file whose announced bytes stop coming for this long: the connection is closed. */
  fileIdleMs: number
  /** Packets waiting in the outbound queue, at most; a client that falls further behind is cut off. */
  maxQueuedPackets: number
}

/**
 * Protocols whose users are not in the room (they neither see nor send room chat): their comings and goings
 * are not announced to 004 users, who only care who can hear them.
 */
const NOT_IN_ROOM = new Set(['p001', 'p003'])

/** The codec is asked to pass any size: the adapter answers "too large" itself and drains the bytes. */
const DECODE_LIMITS: Limits = { maxLen: 0xffff, maxFileBytes: 0xffffffff }

type OutItem =
  | { kind: 'packet'; buf: Buffer; onWritten?: () => void }
  | { kind: 'file'; fileId: string; header: Buffer; size: number; after: Buffer; onWritten?: () => void }

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref())

export class P004Connection extends GatewayConnection {
  /** The client's UTC offset in seconds, from its login (null: UTC). */
  offset: number | null = null
  private running = false
  // inbound file state
  private raw = 0
  private upload: Upload | undefined
  private fileName = ''
  private fileTimer: NodeJS.Timeout | undefined
  // outbound paced queue
  private readonly out: OutItem[] = []
  private outBytes = 0
  private writing = false
  private lastWrite = 0
  // presence: users whose "connected" waits out presenceSettleMs, and users announced connected
  private readonly joining = new Map<number, NodeJS.Timeout>()
  private readonly announced = new Set<number>()

  constructor(
    broker: Broker,
    socket: Socket,
    private readonly opts: P004ConnectionOptions,
    remote: string,
  ) {
    super(PROTOCOL, broker, socket, opts.floodRate, remote)
  }

  // ------------------------------------------------------------ bytes in

  protected consume(): void {
    if (this.raw > 0) this.armFileTimer()
    if (!this.running) void this.run()
  }

  private async run(): Promise<void> {
    this.running = true
    this.socket.pause()
    try {
      while (!this.closed) {
        if (this.raw > 0) {
          if (this.buf.length === 0) break
          const t = takeRaw(this.buf, this.raw)
          this.buf = t.rest
          this.raw = t.remaining
          if (this.upload !== undefined) await this.writeUpload(t.chunk)
          if (this.raw === 0) await this.fileComplete()
          continue
        }
        const r = decodeClient(this.buf, DECODE_LIMITS)
        if (!r.ok) {
          if (r.reason === 'need-more') break
          return this.refuse(`${r.reason} packet: ${r.detail}`)
        }
        this.buf = r.rest
        if (!this.withinFloodLimit('packets')) return
        await this.handle(r.frame)
      }
    } catch (err) {
      this.broker.log.error({ err, remote: this.remote }, 'p004: packet handling failed')
      this.shut()
    } finally {
      this.running = false
      if (!this.closed) this.socket.resume()
    }
  }

  private async handle(m: ClientMessage): Promise<void> {
    const s = this.session
    if (s === undefined || s.closed) {
      if (m.kind === 'login') return this.login(m.name, m.utcOffsetSeconds)
      if (m.kind === 'exit') return this.shut()
      return this.refuse(`${m.kind} packet before login`)
    }
    switch (m.kind) {
      case 'login':
        return // already logged in: the original ignores a second login packet too
      case 'exit':
        // Others are told "User x disconnected" through the presence event detach() raises.
        return this.shut()
      case 'message':
        try {
          await this.broker.send(s, { to: { kind: 'all' }, body: Buffer.from(m.text, 'utf8') })
        } catch (err) {
          this.failed(err, 'message refused')
        }
        return
      case 'rename':
        try {
          await this.broker.rename(s, m.name) // the 'rename' event answers, to us and to the others
        } catch (err) {
          if (isBrokerError(err) && err.code === 'SB_ERR_NAME_TAKEN') this.sendNotice(NAME_IN_USE_TEXT)
          else this.failed(err, 'rename refused')
        }
        return
      case 'file':
        return this.fileBegins(s, m.size, m.filename, m.caption)
      case 'unknown':
        // The framing is intact: skip it, as the original ignores types it does not know.
        this.broker.log.debug({ remote: this.remote, type: m.type }, 'p004: unknown packet type skipped')
        return
    }
  }

  private async login(name: string, offset: number | null): Promise<void> {
    await this.claim(
      name,
      (err) => {
        // As in the original, the client may try another name on the same connection.
        if (isBrokerError(err) && err.code === 'SB_ERR_NAME_TAKEN') this.sendNotice(NAME_IN_USE_TEXT)
        else if (isBrokerError(err) && err.code === 'SB_ERR_RATE_LIMITED') this.refuse('flood at login')
        else this.sendNotice(`The name is not allowed: ${isBrokerError(err) ? err.message : 'internal error'}`)
      },
      (s) => {
        this.offset = offset
        this.broker.watchPresence(s, true) // connected / disconnected notices about the others
        // Before the events held during the claim: the original client expects the welcome first.
        this.enqueue({ kind: 'packet', buf: encodeServer({ kind: 'welcome', text: WELCOME_TEXT }) })
      },
    )
  }

  // ------------------------------------------------------------ files in

  private async fileBegins(s: Session, size: number, filename: string, caption: string): Promise<void> {
    this.raw = size
    this.fileName = filename
    this.upload = undefined
    const files = this.opts.files
    if (files === undefined) this.sendNotice('File transfer is not enabled on this server')
    else if (size > files.maxFileBytes)
      this.sendNotice(`The file is too large: ${size} bytes, the limit is ${files.maxFileBytes} bytes (maxFileBytes)`)
    else {
      try {
        this.upload = await files.beginUpload(s, {
          name: filename,
          size,
          to: { kind: 'all' },
          ...(caption !== '' && { text: caption }),
        })
      } catch (err) {
        this.failed(err, `file ${filename} refused`)
      }
    }
    if (this.upload === undefined && size > 0)
      this.broker.log.warn({ remote: this.remote, file: filename, size }, 'p004: file refused; draining its bytes')
    if (this.raw === 0) await this.fileComplete()
    else this.armFileTimer()
  }

  private async writeUpload(chunk: Buffer): Promise<void> {
    const up = this.upload
    if (up === undefined || chunk.length === 0) return
    try {
      await up.write(chunk)
    } catch (err) {
      this.upload = undefined // the rest of the bytes are drained
      this.failed(err, `file ${this.fileName} failed`)
    }
  }

  private async fileComplete(): Promise<void> {
    clearTimeout(this.fileTimer)
    const up = this.upload
    this.upload = undefined
    if (up === undefined) return
    try {
      await up.finish() // sends the file message to ALL: the others get it in their own protocol
    } catch (err) {
      this.failed(err, `file ${this.fileName} could not be stored`)
    }
  }

  private armFileTimer(): void {
    clearTimeout(this.fileTimer)
    this.fileTimer = setTimeout(() => {
      if (this.raw === 0 || this.closed) return
      // The stream cannot be resynchronised: the rest of the file would be read as packets.
      this.sendNotice(`The file ${this.fileName} did not arrive: ${this.raw} bytes missing`)
      this.refuse(`file ${this.fileName}: ${this.raw} bytes still missing after ${this.opts.fileIdleMs} ms`)
    }, this.opts.fileIdleMs)
    this.fileTimer.unref()
  }

  // ------------------------------------------------------------ SessionSink

  protected pushTo(s: Session, ev: Outbound): boolean {
    const now = Date.now()
    switch (ev.type) {
      case 'message':
        this.deliver(s, ev.msg)
        break
      case 'presence':
        this.presence(ev)
        break
      case 'rename':
        if (ev.user.id === s.user.id)
          this.enqueue({ kind: 'packet', buf: encodeServer({ kind: 'renamed', text: notice.usernameChanged(ev.user.name) }) })
        else this.sendNotice(notice.renamed(hhmm(now, this.offset), ev.oldName, ev.user.name))
        break
      case 'receipt':
        if (ev.seq !== 0) void this.ackQuietly(s, ev.seq) // 004 never asks for receipts
        break
      case 'notice':
        this.sendNotice(ev.text)
        break
      case 'conversation':
        declineConversation(this.broker, s, ev) // 004 has no direct conversations
        break
    }
    return this.out.length < this.opts.maxQueuedPackets / 2
  }

  /**
   * What a room user wants to hear of others coming and going: who joined the room and stayed, and who left
   * it. A session that comes and goes within presenceSettleMs (a one-shot `switchboard send`, a probe) is not
   * announced at all; users of protocols without a room (001, 003) are never announced. "connected" is shown
   * once the user has stayed presenceSettleMs, stamped with the time it came; "disconnected" is shown for a
   * user announced connected, or online before this client logged in.
   */
  private presence(ev: Extract<Outbound, { type: 'presence' }>): void {
    if (ev.protocol !== undefined && NOT_IN_ROOM.has(ev.protocol)) return
    const id = ev.user.id
    if (ev.online) {
      if (this.joining.has(id) || this.announced.has(id)) return
      const timer = setTimeout(() => {
        this.joining.delete(id)
        this.announced.add(id)
        this.sendNotice(notice.connected(hhmm(ev.at, this.offset), ev.user.name))
      }, this.opts.presenceSettleMs)
      timer.unref()
      this.joining.set(id, timer)
      return
    }
    const pending = this.joining.get(id)
    if (pending !== undefined) {
      // came and went before it was announced: nothing to say
      clearTimeout(pending)
      this.joining.delete(id)
      return
    }
    this.announced.delete(id)
    this.sendNotice(notice.disconnected(hhmm(ev.at, this.offset), ev.user.name))
  }

  private deliver(s: Session, m: Message): void {
    if (m.kind === 'receipt' || m.kind === 'control') return
    const time = hhmm(m.ts, this.offset)
    const stored = m.seq !== 0
    const onWritten = stored ? () => void this.ackQuietly(s, m.seq) : undefined
    if (m.kind === 'file') return this.deliverFile(m, time, onWritten)
    let text = m.body.toString('utf8')
    if (m.to !== ALL_ID || stored) text = (m.topic !== undefined ? `[${m.topic}] ` : DIRECT_PREFIX) + text
    if (m.kind === 'notice') {
      this.enqueue({ kind: 'packet', buf: encodePacket(PacketType.MESSAGE, clip(text)), ...(onWritten && { onWritten }) })
      return
    }
    if (m.to === ALL_ID && !stored) {
      // The room: one encoding per UTC offset, shared by every 004 receiver in that offset.
      const buf = encodeOnce(m, `${PROTOCOL}@${this.offset ?? 0}`, () =>
        encodePacket(PacketType.MESSAGE, clip(notice.chat(time, m.fromName, text))),
      )
      this.enqueue({ kind: 'packet', buf })
      return
    }
    this.enqueue({
      kind: 'packet',
      buf: encodePacket(PacketType.MESSAGE, clip(notice.chat(time, m.fromName, text))),
      ...(onWritten && { onWritten }),
    })
  }

  private deliverFile(m: Message, time: string, onWritten: (() => void) | undefined): void {
    const f = decodeFileMessage(m.body)
    if (f === undefined || m.fileId === undefined || this.opts.files === undefined || f.size > 0xffffffff) {
      const what = f === undefined ? 'a file' : `file ${f.name} (${f.size} bytes)`
      this.enqueue({
        kind: 'packet',
        buf: encodePacket(
          PacketType.MESSAGE,
          clip(notice.chat(time, m.fromName, `sent ${what}, which this gateway cannot deliver`)),
        ),
        ...(onWritten && { onWritten }),
      })
      return
    }
    // The original client takes the first word as the file name: a name with blanks would be split.
    const filename = f.name.replace(/\s/g, '_')
    let caption = f.text ?? ''
    if (m.to !== ALL_ID) caption = (m.topic !== undefined ? `[${m.topic}] ` : DIRECT_PREFIX) + caption
    this.enqueue({
      kind: 'file',
      fileId: m.fileId,
      size: f.size,
      header: encodeServer({
        kind: 'file',
        header: notice.fileHeader(time, m.fromName),
        size: f.size,
        filename,
        caption: clipBytes(caption, 60_000),
      }),
      after: encodePacket(PacketType.MESSAGE, clip(notice.uploaded(time, m.fromName, filename))),
      ...(onWritten && { onWritten }),
    })
  }

  override backlog(): number {
    return this.outBytes + this.socket.writableLength
  }

  /** 004 can say why: a notice, which the paced queue writes before the connection closes. */
  protected override farewell(reason: CloseReason, text: string): void {
    this.sendNotice(text || `Disconnected: ${reason}`)
    setTimeout(() => this.shut(), this.opts.paceMs * 2).unref()
  }

  // ------------------------------------------------------------ out

  private sendNotice(text: string): void {
    this.enqueue({ kind: 'packet', buf: encodePacket(PacketType.MESSAGE, clip(text)) })
  }

  private enqueue(item: OutItem): void {
    if (this.closed) return
    if (this.out.length >= this.opts.maxQueuedPackets) {
      this.refuse(`slow consumer: more than ${this.opts.maxQueuedPackets} packets waiting`)
      return
    }
    this.out.push(item)
    this.outBytes += item.kind === 'packet' ? item.buf.length : item.header.length + item.after.length
    if (!this.writing) void this.drainQueue()
  }

  private async drainQueue(): Promise<void> {
    this.writing = true
    try {
      while (!this.closed) {
        const item = this.out.shift()
        if (item === undefined) break
        this.outBytes -= item.kind === 'packet' ? item.buf.length : item.header.length + item.after.length
        if (item.kind === 'packet') await this.writeOne(item.buf)
        else await this.writeFile(item)
        item.onWritten?.()
      }
    } catch (err) {
      this.broker.log.warn({ err, remote: this.remote }, 'p004: writing to the client failed')
      this.shut()
    } finally {
      this.writing = false
    }
  }

  /** One write, at least paceMs after the previous one, and only once the socket has room. */
  private async writeOne(buf: Buffer): Promise<void> {
    const wait = this.lastWrite + this.opts.paceMs - Date.now()
    if (wait > 0) await sleep(wait)
    if (this.closed || this.socket.destroyed) return
    if (!this.socket.write(buf)) await this.socketDrain()
    this.lastWrite = Date.now()
  }

  private async writeFile(item: Extract<OutItem, { kind: 'file' }>): Promise<void> {
    const s = this.session
    if (s === undefined || this.opts.files === undefined) return
    let dl
    try {
      // Opened before the header goes out: once the header is written, exactly `size` bytes are owed.
      dl = await this.opts.files.openDownload(s, item.fileId)
    } catch (err) {
      this.broker.log.warn({ err: isBrokerError(err) ? err.message : err, fileId: item.fileId }, 'p004: file cannot be delivered')
      await this.writeOne(
        encodePacket(
          PacketType.MESSAGE,
          clip(`A file could not be delivered: ${isBrokerError(err) ? err.message : 'internal error'}`),
        ),
      )
      return
    }
    await this.writeOne(item.header)
    const headerAt = this.lastWrite
    const wait = this.lastWrite + this.opts.paceMs - Date.now()
    if (wait > 0) await sleep(wait)
    let sent = 0
    for await (const chunk of dl.stream as AsyncIterable<Buffer>) {
      if (this.closed || this.socket.destroyed) {
        dl.stream.destroy()
        return
      }
      sent += chunk.length
      if (!this.socket.write(chunk)) await this.socketDrain()
    }
    this.lastWrite = Date.now()
    if (sent !== item.size) throw new Error(`file ${item.fileId}: sent ${sent} of ${item.size} bytes`)
    // The original client is still asleep, or reading the file: the notice must not join its last recv().
    const noticeAt = Math.max(headerAt + this.opts.fileReadMs, this.lastWrite) + this.opts.fileSettleMs
    if (noticeAt > Date.now()) await sleep(noticeAt - Date.now())
    await this.writeOne(item.after)
  }

  private socketDrain(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done)
        this.socket.off('close', done)
        resolve()
      }
      this.socket.on('drain', done)
      this.socket.on('close', done)
    })
  }

  private failed(err: unknown, what: string): void {
    if (isBrokerError(err) && err.code === 'SB_ERR_RATE_LIMITED') return this.refuse(`flood: ${err.message}`)
    const why = isBrokerError(err) ? err.message : 'internal error'
    if (!isBrokerError(err)) this.broker.log.error({ err, remote: this.remote }, `p004: ${what}`)
    else this.broker.log.warn({ remote: this.remote, code: err.code }, `p004: ${what}: ${why}`)
    this.sendNotice(`${capitalise(what)}: ${why}`)
  }

  protected override cleanup(): void {
    clearTimeout(this.fileTimer)
    for (const t of this.joining.values()) clearTimeout(t)
    this.joining.clear()
    void this.upload?.abort('the connection closed').catch(() => undefined)
    this.upload = undefined
    this.out.length = 0
    this.outBytes = 0
    super.cleanup()
  }
}

const capitalise = (s: string) => s.charAt(0).toUpperCase() + s.slice(1)

/** A notice longer than a packet can carry is cut at a character boundary (server texts only). */
function clip(text: string): string {
  return clipBytes(text, 65_000)
}

function clipBytes(text: string, max: number): string {
  if (Buffer.byteLength(text) <= max) return text
  let out = ''
  let n = 0
  for (const ch of text) {
    n += Buffer.byteLength(ch)
    if (n > max) break
    out += ch
  }
  return out
}
