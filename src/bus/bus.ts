/**
 * The Bus is the only way nodes talk (socket.io's cluster adapter shape): a discriminated union of
 * messages, `publish` to the other nodes, an `onMessage` callback, and the registry of who is online where.
 * The single-node default is LocalBus (no other nodes); cluster mode is redis/.
 */
import type { Message, Outbound, PresenceInfo, CloseReason, Receipt } from '../core/types.js'

export type BusMessage =
  /**
   * Messages were committed to `user`'s log. The node holding a session of the user offers `msgs` to it as if they
   * had been committed there (in seq order; a gap or an absent list makes the session read its log from the store).
   */
  | { type: 'wake'; user: number; msgs?: Message[] }
  /** A live event for one user's session, wherever it is. */
  | { type: 'event'; to: number; ev: Outbound }
  /**
   * A receipt for `to`, a sender online on the receiving node (as the publisher's copy of the registry has it). That
   * node pushes it to the user's sessions, or, if it holds none any more, stores it in the user's log as one node
   * stores a receipt for an offline sender. A receipt that no node received comes back to its own node's handler.
   * `pushed`: the publisher pushed it to a session of the user too; a node that holds none drops it (and so does
   * the publisher when it comes back).
   */
  | { type: 'receipt'; to: number; receipt: Receipt; pushed?: true }
  /** A live event for every session (the room) but `except`'s. */
  | { type: 'broadcast'; ev: Outbound; except: number }
  /**
   * End the session of `user`'s `device` on every node but `node` (one session per device across the cluster;
   * `device` null: every session of the user — a legacy name has one). A node ends its session only if it is
   * older than `since` (ties broken by node id), so two logins racing on two nodes leave exactly one, the newer.
   */
  | { type: 'kick'; user: number; device: number | null; reason: CloseReason; node: string; since: number }
  /** A device was revoked: end its sessions everywhere, whatever their age. */
  | { type: 'revoke'; user: number; device: number }

export interface Bus {
  readonly nodeId: string
  /**
   * True when other nodes share the store: what this node caches of it (users, names, blocks) can change
   * behind its back and must age out. False for the single-node bus, whose node sees every change.
   */
  readonly clustered: boolean
  start(onMessage: (m: BusMessage) => void): Promise<void>
  /**
   * Send to the other nodes (an 'event' only to those holding a session of its user, when this node knows them; a
   * 'receipt' only to those, and back to this node's own handler when none received it). Fire and forget; a lost
   * message is repaired by the store (wake) or is live-only.
   */
  publish(m: BusMessage): void
  /**
   * `msg` was committed to `msg.to`'s log: wake the other nodes that hold a session of that user, carrying the
   * message (a cluster bus batches the wakes of one event-loop turn per node). Is a device of the user online on
   * another node, as far as this node knows? No round trip: the answer comes from this node's copy of the
   * registry, which a login on another node reaches a moment later — the bus then wakes that node for the users
   * it committed for lately, so no message waits for the next one.
   */
  wake(msg: Message): boolean
  /** Is a device of `user` online on another node, as far as this node knows? No round trip (as wake()). */
  elsewhere(user: number): boolean
  /** Presence registry, cluster-wide: one entry per device (`info.device`) of a user. */
  setOnline(info: PresenceInfo): Promise<void>
  setOffline(user: number, device: number): Promise<void>
  /** Every online device's entry. */
  online(): Promise<PresenceInfo[]>
  /** Is some device of the user online anywhere? */
  isOnline(user: number): Promise<boolean>
  close(): Promise<void>
}

export type { Message }
