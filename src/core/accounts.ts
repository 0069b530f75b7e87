/**
 * Accounts that go: a user who deletes its account (every device's session ends, here and on every node), and
 * tokenless identities (legacy gateways) unused for legacyIdentityTtlMs, swept by the reaper. Either way the
 * user's log goes with it and the senders of what no device had acknowledged, if they asked, are told 404.
 */
import { guard, type Core } from './context.js'
import type { Directory } from './directory.js'
import type { Receipts } from './receipts.js'
import type { Session } from './session.js'
import type { SessionRegistry } from './sessions.js'
import { Flag, ReceiptStatus, type UserInfo } from './types.js'
import type { UserRecord } from '../store/store.js'

export class Accounts {
  private lastTokenlessSweep = 0

  constructor(
    private readonly core: Core,
    private readonly sessions: SessionRegistry,
    private readonly directory: Directory,
    private readonly receipts: Receipts,
    private readonly legacyIdentityTtlMs: number,
  ) {}

  async delete(s: Session): Promise<void> {
    guard(this.core, s)
    const user = { ...s.user }
    // Every device goes with the account: its sessions here, and (by the kick of every session) elsewhere.
    for (const x of [...this.sessions.all(user.id)]) this.sessions.end(x, 'deleted', 'the account was deleted')
    this.core.bus.publish({
      type: 'kick',
      user: user.id,
      device: null,
      reason: 'deleted',
      node: this.core.bus.nodeId,
      since: Number.MAX_SAFE_INTEGER,
    })
    await this.remove(user)
    this.core.log.info({ user: user.id, name: user.name }, 'account deleted')
  }

  /**
   * A tokenless identity (legacy gateway login, or a 001 frame to a name never seen) not used for
   * legacyIdentityTtlMs is not kept: it is removed with its log, and its name is free again. Not while online.
   */
  async expireTokenless(rec: UserRecord): Promise<boolean> {
    const { store, bus } = this.core
    if (!rec.tokenless || this.core.sessions.hasUser(rec.id) || (await bus.isOnline(rec.id))) return false
    const last = (await store.lastSeen(rec.id)) ?? rec.createdAt
    if (last >= this.core.now() - this.legacyIdentityTtlMs) return false
    await this.remove({ id: rec.id, name: rec.name })
    this.core.log.info({ user: rec.id, name: rec.name, lastSeen: last }, 'tokenless identity expired')
    return true
  }

  /** The reaper's sweep of stale tokenless identities, at most once a minute (or once a TTL, if shorter). */
  async sweepTokenless(now: number): Promise<void> {
    if (now - this.lastTokenlessSweep < Math.min(60_000, this.legacyIdentityTtlMs)) return
    this.lastTokenlessSweep = now
    for (const rec of await this.core.store.staleTokenless(now - this.legacyIdentityTtlMs, 1000)) await this.expireTokenless(rec)
  }

  /** Remove a user and its log; the senders of what no device had acknowledged that asked for receipts are told (404). */
  private async remove(user: UserInfo): Promise<void> {
    const dropped = await this.core.store.deleteUser(user.id)
    this.directory.forgetUser(user.id, user.name)
    const now = this.core.now()
    for (const m of dropped)
      if (m.kind !== 'receipt' && m.flags & Flag.RECEIPT) this.receipts.tell(m.from, ReceiptStatus.DELETED, m, user, m.seq, now)
  }
}
