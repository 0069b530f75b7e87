/**
 * The directory: users by id and by name, topics and their subscribers, block lists, and the caches on the send
 * path (id → user, name → id, recipient → whom it blocks). Name rules (normalizeName) live here too.
 *
 * The caches are kept exact by this node's renames, deletes and blocks; when other nodes share the store
 * (`bus.clustered`), their changes arrive by the bus (renames) or age out after CLUSTER_CACHE_TTL_MS.
 */
import { BrokerError } from './errors.js'
import { guard, type Core } from './context.js'
import type { Session } from './session.js'
import { normalizeName } from './names.js'
import { ALL_ID, SERVER_ID, type Address, type UserInfo } from './types.js'
import type { UserRecord } from '../store/store.js'

const CLUSTER_CACHE_TTL_MS = 2000
/** The name rules (visible, not a look-alike of a reserved name) are in names.ts. */
export { normalizeName }

export class Directory {
  private readonly userCache = new Map<number, { info: UserInfo; at: number }>()
  private readonly nameCache = new Map<string, number>()
  private readonly blockCache = new Map<number, { set: Set<number>; at: number }>()
  private readonly cacheTtlMs: number

  constructor(private readonly core: Core) {
    this.cacheTtlMs = core.bus.clustered ? CLUSTER_CACHE_TTL_MS : Number.POSITIVE_INFINITY
  }

  normalizeTopic(raw: string): string {
    return normalizeName(raw, this.core.limits.maxTopicBytes, 'topic', 'maxTopicBytes')
  }

  // ---------------------------------------------------------------- users

  async resolveUser(to: Address): Promise<UserInfo | undefined> {
    const now = this.core.now()
    if (to.kind === 'name') {
      const name = to.name.normalize('NFC')
      const hit = this.cachedByName(name, now)
      if (hit !== undefined) return hit
      const rec = await this.core.store.userByName(name)
      if (rec === undefined) {
        this.nameCache.delete(name)
        return undefined
      }
      return this.cacheUser(rec, now)
    }
    if (to.kind !== 'user' || to.id === SERVER_ID || to.id === ALL_ID) return undefined
    const hit = this.cachedById(to.id, now)
    if (hit !== undefined) return hit
    const rec = await this.core.store.userById(to.id)
    if (rec === undefined) {
      this.forgetUser(to.id)
      return undefined
    }
    return this.cacheUser(rec, now)
  }

  /**
   * What resolveUser and isBlocked would answer for a direct message from `sender`, when both answers are in the
   * caches: the recipient, not blocking the sender. Undefined whenever a lookup would be needed (or the answer is no):
   * the caller then takes the asynchronous path, which gives the error.
   */
  cachedRecipient(to: Address, sender: number): UserInfo | undefined {
    const now = this.core.now()
    let user: UserInfo | undefined
    if (to.kind === 'name') user = this.cachedByName(to.name.normalize('NFC'), now)
    else if (to.kind === 'user' && to.id !== SERVER_ID && to.id !== ALL_ID) user = this.cachedById(to.id, now)
    if (user === undefined) return undefined
    const blocks = this.cachedBlocks(user.id, now)
    return blocks === undefined || blocks.has(sender) ? undefined : user
  }

  private cachedById(id: number, now: number): UserInfo | undefined {
    const hit = this.userCache.get(id)
    return hit !== undefined && now - hit.at < this.cacheTtlMs ? hit.info : undefined
  }

  private cachedByName(name: string, now: number): UserInfo | undefined {
    const id = this.nameCache.get(name)
    const hit = id === undefined ? undefined : this.cachedById(id, now)
    return hit?.name === name ? hit : undefined
  }

  private cacheUser(rec: UserRecord, now: number): UserInfo {
    const old = this.userCache.get(rec.id)
    if (old !== undefined && old.info.name !== rec.name) this.nameCache.delete(old.info.name)
    const info = { id: rec.id, name: rec.name }
    this.userCache.set(rec.id, { info, at: now })
    this.nameCache.set(rec.name, rec.id)
    return info
  }

  /** A user was renamed or deleted (here, or on another node: the bus said so). */
  forgetUser(id: number, name?: string): void {
    const old = this.userCache.get(id)
    if (old !== undefined) this.nameCache.delete(old.info.name)
    if (name !== undefined && this.nameCache.get(name) === id) this.nameCache.delete(name)
    this.userCache.delete(id)
    this.blockCache.delete(id)
  }

  /** Look a user up by id or name (adapters use this to render and resolve addresses). */
  findUser(who: { id: number } | { name: string }): Promise<UserInfo | undefined> {
    return this.resolveUser('id' in who ? { kind: 'user', id: who.id } : { kind: 'name', name: who.name })
  }

  // ---------------------------------------------------------------- blocks

  /** Is `sender` blocked by `recipient`? */
  async isBlocked(recipient: number, sender: number): Promise<boolean> {
    const now = this.core.now()
    let set = this.cachedBlocks(recipient, now)
    if (set === undefined) {
      set = new Set(await this.core.store.blocked(recipient))
      this.blockCache.set(recipient, { set, at: now })
    }
    return set.has(sender)
  }

  /** Whom `recipient` blocks, if the cache still knows. */
  private cachedBlocks(recipient: number, now: number): Set<number> | undefined {
    const hit = this.blockCache.get(recipient)
    return hit !== undefined && now - hit.at < this.cacheTtlMs ? hit.set : undefined
  }

  async block(s: Session, who: Address): Promise<UserInfo> {
    guard(this.core, s)
    const u = await this.resolveUser(who)
    if (u === undefined) throw new BrokerError('SB_ERR_UNKNOWN_RECIPIENT', 'no such user')
    await this.core.store.block(s.user.id, u.id)
    this.blockCache.delete(s.user.id)
    return u
  }

  async unblock(s: Session, who: Address): Promise<UserInfo> {
    guard(this.core, s)
    const u = await this.resolveUser(who)
    if (u === undefined) throw new BrokerError('SB_ERR_UNKNOWN_RECIPIENT', 'no such user')
    await this.core.store.unblock(s.user.id, u.id)
    this.blockCache.delete(s.user.id)
    return u
  }

  async blocked(s: Session): Promise<UserInfo[]> {
    guard(this.core, s)
    const out: UserInfo[] = []
    for (const id of await this.core.store.blocked(s.user.id)) {
      const u = await this.core.store.userById(id)
      if (u !== undefined) out.push({ id: u.id, name: u.name })
    }
    return out
  }

  // ---------------------------------------------------------------- topics

  async subscribe(s: Session, rawTopic: string): Promise<boolean> {
    guard(this.core, s)
    return this.core.store.subscribe(s.user.id, this.normalizeTopic(rawTopic))
  }

  async unsubscribe(s: Session, rawTopic: string): Promise<boolean> {
    guard(this.core, s)
    return this.core.store.unsubscribe(s.user.id, rawTopic.normalize('NFC'))
  }

  async subscriptions(s: Session): Promise<string[]> {
    guard(this.core, s)
    return this.core.store.subscriptions(s.user.id)
  }

  async topics(s: Session): Promise<{ topic: string; subscribers: number }[]> {
    guard(this.core, s)
    return this.core.store.topics()
  }

  /** Every topic with its subscriber count, asked by a gateway rather than a session (p003's bridge). */
  topicList(): Promise<{ topic: string; subscribers: number }[]> {
    return this.core.store.topics()
  }

  /** The ids subscribed to a topic (already normalised). */
  subscribers(topic: string): Promise<number[]> {
    return this.core.store.subscribers(topic)
  }
}
