/**
 * Every bus backend, chosen by the scheme of --bus. Adding one is adding its folder under src/bus/ with a
 * plugin.ts exporting a BusBackend (src/plugin.ts) and one line here.
 */
import type { BusBackend } from '../plugin.js'
import { localBackend } from './local/plugin.js'
import { redisBackend } from './redis/plugin.js'

export const BUSES: readonly BusBackend[] = [localBackend, redisBackend]
