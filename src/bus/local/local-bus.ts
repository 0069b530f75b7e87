import type { Bus, BusMessage } from '../bus.js'
import type { Message, PresenceInfo } from '../../core/types.js'

/** The single-node bus: there are no other nodes, so publish goes nowhere and presence is this process's. */
export class LocalBus implements Bus {
  readonly nodeId = 'local'
  readonly clustered = false
  /** user → device → entry. */
  private readonly presence = new Map<number, Map<number, PresenceInfo>>()

  async start(_onMessage: (m: BusMessage) => void): Promise<void> {}
  publish(_m: BusMessage): void {}
  wake(_msg: Message): boolean {
    return false
  }
  elsewhere(_user: number): boolean {
    return false
  }
  async setOnline(info: PresenceInfo): Promise<void> {
    let devices = this.presence.get(info.id)
    if (devices === undefined) this.presence.set(info.id, (devices = new Map()))
    devices.set(info.device ?? 0, info)
  }
  async setOffline(user: number, device: number): Promise<void> {
    const devices = this.presence.get(user)
    if (devices === undefined) return
    devices.delete(device)
    if (devices.size === 0) this.presence.delete(user)
  }
  async online(): Promise<PresenceInfo[]> {
    const out: PresenceInfo[] = []
    for (const devices of this.presence.values()) out.push(...devices.values())
    return out
  }
  async isOnline(user: number): Promise<boolean> {
    return this.presence.has(user)
  }
  async close(): Promise<void> {}
}
