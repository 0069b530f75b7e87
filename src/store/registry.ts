/**
 * Every store backend, chosen by the scheme of --store. Adding one is adding its folder under src/store/
 * with a plugin.ts exporting a StoreBackend (src/plugin.ts) and one line here.
 */
import type { StoreBackend } from '../plugin.js'
import { sqliteBackend } from './sqlite/plugin.js'
import { postgresBackend } from './postgres/plugin.js'
import { memoryBackend } from './memory/plugin.js'

export const STORES: readonly StoreBackend[] = [sqliteBackend, postgresBackend, memoryBackend]
