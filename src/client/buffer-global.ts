/** Buffer as a global where there is none (browsers): bundlers resolve 'buffer' to the npm package. */
import { Buffer } from 'buffer'

const g = globalThis as { Buffer?: unknown }
g.Buffer ??= Buffer
