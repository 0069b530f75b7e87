/**
 * Receipts: the one builder of a Receipt, and telling a sender what became of its message — pushed live if the
 * sender has a session on this node or (cluster) on another, as this node's copy of the registry has it; else
 * queued for it (kind 'receipt'), durable and delivered when it comes back, whichever node it comes back to.
 */
import { SERVER_ID, type Message, type Receipt, type ReceiptStatusCode, type UserInfo } from './types.js'
import type { Core } from './context.js'
import type { SessionRegistry } from './sessions.js'
import { encodeReceiptBody } from './receipt-body.js'

/** The receipt about one message (`about`: its msgId and topic) for its recipient and its seq there. */
export function receiptOf(
  status: ReceiptStatusCode,
  about: { msgId: number; topic?: string | undefined },
  recipient: UserInfo,
  seq: number,
  at: number,
): Receipt {
  const r: Receipt = { msgId: about.msgId, status, recipient: recipient.id, recipientName: recipient.name, seq, at }
  if (about.topic !== undefined) r.topic = about.topic
  return r
}

export class Receipts {
  constructor(
    private readonly core: Core,
    private readonly sessions: SessionRegistry,
    /** Delivery's hand-off of a committed message (a queued receipt) to its recipient's session. */
    private readonly committed: (msg: Message) => boolean,
  ) {}

  /** Tell `to` (the sender) what became of its message. */
  tell(
    to: number,
    status: ReceiptStatusCode,
    about: { msgId: number; topic?: string | undefined },
    recipient: UserInfo,
    seq: number,
    at: number,
  ): void {
    this.send(to, receiptOf(status, about, recipient, seq, at))
  }

  /**
   * Live to the sender's sessions (the usual case: it is waiting for this), with no promise to settle: on this node,
   * or by the bus to the node that holds them, which stores it if they left meanwhile. Otherwise through the
   * user's queue: durable, and delivered when a device of the user comes back. A live receipt is as durable as the
   * session it is pushed to, on one node or across nodes: one lost with its connection is not repeated.
   */
  send(to: number, receipt: Receipt): void {
    const counts = this.core.counters.receipts
    counts[receipt.status] = (counts[receipt.status] ?? 0) + 1
    const { bus } = this.core
    // Every session of the user, on every node: the device that sent it may be on another node than the oldest one.
    const here = this.sessions.all(to).length > 0
    if (bus.clustered && bus.elsewhere(to)) {
      // Pushed here too: a node that no longer holds the user drops it rather than store a second copy.
      bus.publish(here ? { type: 'receipt', to, receipt, pushed: true } : { type: 'receipt', to, receipt })
      if (!here) return
    }
    this.arrived(to, receipt)
  }

  /**
   * Push `receipt` to `to`'s sessions on this node, or queue it if there are none (also: one from another node),
   * unless `pushed`: it reached a session elsewhere already.
   */
  arrived(to: number, receipt: Receipt, pushed = false): void {
    // Every session of the user: the device (or the send-only one-shot) that sent it may not be the oldest one.
    const here = this.sessions.all(to)
    if (here.length === 0) {
      if (pushed) return
      void this.queue(to, receipt).catch((err) => this.core.log.warn({ err, to }, 'receipt could not be delivered'))
      return
    }
    try {
      for (const s of here) this.sessions.emit(s, { type: 'receipt', receipt, seq: 0 })
    } catch (err) {
      this.core.log.warn({ err, to }, 'receipt could not be delivered')
    }
  }

  /** The receipt as a message in `to`'s queue (kind 'receipt'), offered once committed. */
  private async queue(to: number, receipt: Receipt): Promise<void> {
    const { limits } = this.core
    const r = await this.core.committer.submit({
      type: 'send',
      copies: [
        {
          to,
          kind: 'receipt',
          from: SERVER_ID,
          fromName: 'SERVER',
          msgId: receipt.msgId,
          ts: this.core.now(),
          body: encodeReceiptBody(receipt),
          flags: 0,
        },
      ],
      limits: { maxCount: limits.maxQueueLength, maxBytes: limits.maxQueueBytes },
    })
    if (r.type === 'send' && !r.duplicate && r.seqs[0]! > 0)
      this.committed({ ...this.receiptMessage(to, receipt), seq: r.seqs[0]! })
  }

  private receiptMessage(to: number, receipt: Receipt): Message {
    return {
      seq: 0,
      msgId: receipt.msgId,
      from: SERVER_ID,
      fromName: 'SERVER',
      to,
      kind: 'receipt',
      ts: this.core.now(),
      body: encodeReceiptBody(receipt),
      flags: 0,
    }
  }
}
