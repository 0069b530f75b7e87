/**
 * Every gateway the server can start, in the order they start and are listed. Adding a protocol is adding
 * its folder under src/protocols/ with a plugin.ts (see src/plugin.ts) and one line here: its options,
 * environment variables and --help section follow from the plugin.
 */
import { nativeGateway } from './native/plugin.js'
import { httpGateway } from './http/plugin.js'
import { p001Gateway } from './p001/plugin.js'
import { p002Gateway } from './p002/plugin.js'
import { p003Gateway } from './p003/plugin.js'
import { p004Gateway } from './p004/plugin.js'

export const GATEWAYS = [nativeGateway, httpGateway, p001Gateway, p002Gateway, p004Gateway, p003Gateway] as const
