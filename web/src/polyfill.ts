/**
 * The native codec (src/protocols/native/codec.ts) works on Node's Buffer. Browsers have none, so the
 * `buffer` package stands in. This module is imported first by main.tsx: ES modules run in import order,
 * so Buffer is global before the SDK's modules are evaluated.
 */
import { Buffer } from 'buffer'

const g = globalThis as { Buffer?: unknown }
g.Buffer ??= Buffer
