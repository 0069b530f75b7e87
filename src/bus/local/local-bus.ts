import type { Bus, BusMessage } from '../bus.js'
import type { PresenceInfo } from '../../core/types.js'

/** The single-node bus: there are no other nodes, so publish goes nowhere and presence is this process's. */
export class LocalBus implements Bus {
  readonly nodeId = 'local'
  readonly clustered = false
  private readonly presence = new Map<number, PresenceInfo>()

  async start(_onMessage: (m: BusMessage) => void): Promise<void> {}
  publish(_m: BusMessage): void {}
  async setOnline(info: PresenceInfo): Promise<void> {
    this.presence.set(info.id, info)
  }
  async setOffline(user: number): Promise<void> {
    this.presence.delete(user)
  }
  async online(): Promise<PresenceInfo[]> {
    return [...this.presence.values()]
  }
  async isOnline(user: number): Promise<boolean> {
    return this.presence.has(user)
  }
  async close(): Promise<void> {}
}
