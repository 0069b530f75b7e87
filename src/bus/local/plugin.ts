/** The single-node bus: `--bus local` (the default). */
import type { BusBackend } from '../../plugin.js'

export const localBackend: BusBackend = {
  schemes: ['local'],
  usage: "'local' (single node)",
  async open() {
    const { LocalBus } = await import('./local-bus.js')
    return new LocalBus()
  },
}
