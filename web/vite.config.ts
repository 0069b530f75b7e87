/**
 * Builds the browser client into web/dist, which the HTTP listener serves at `/`, and the operator's
 * dashboard into web/dist/admin/, which it serves at `/admin` behind --admin-token (never as a static file).
 *   npx vite build --config web/vite.config.ts
 * Everything is bundled (no CDN): Preact, the SDK (src/client) and the native codec with a Buffer polyfill.
 */
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'

const here = fileURLToPath(new URL('.', import.meta.url))

export default defineConfig({
  root: here,
  base: './',
  // The SDK lives in ../src; Vite resolves its `.js` specifiers to the `.ts` files.
  server: { fs: { allow: ['..'] } },
  resolve: {
    alias: {
      'node:net': fileURLToPath(new URL('src/node-stub.ts', import.meta.url)),
      'node:tls': fileURLToPath(new URL('src/node-stub.ts', import.meta.url)),
    },
  },
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    // One small app: a single chunk is simpler to serve and cache than a split one.
    chunkSizeWarningLimit: 300,
    // Two pages: the chat (index.html) and the dashboard (admin/index.html, with uPlot).
    rolldownOptions: {
      input: {
        chat: fileURLToPath(new URL('index.html', import.meta.url)),
        admin: fileURLToPath(new URL('admin/index.html', import.meta.url)),
      },
    },
  },
  logLevel: 'warn',
})
