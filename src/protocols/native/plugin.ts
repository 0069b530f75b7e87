/**
 * The native protocol gateway: TCP, or TLS with --tls-key and --tls-cert. Always on.
 */
import { readFileSync } from 'node:fs'
import { defineGateway } from '../../plugin.js'

export const nativeGateway = defineGateway({
  name: 'native',
  title: 'Native protocol (TCP/TLS)',
  options: [
    { name: 'port', kind: 'int', default: 7070, help: 'native protocol TCP port (0 = any free port)' },
    { name: 'tls-key', kind: 'string', default: undefined, help: 'PEM key file: serve the native protocol over TLS' },
    { name: 'tls-cert', kind: 'string', default: undefined, help: 'PEM certificate file for --tls-key' },
  ],
  enabled: () => true,
  async start(ctx) {
    const { 'tls-key': key, 'tls-cert': cert } = ctx.options
    const tls = key !== undefined && cert !== undefined ? { key: readFileSync(key), cert: readFileSync(cert) } : undefined
    const [{ listenNative }, { nativeOptionsFor }] = await Promise.all([import('./server.js'), import('./options.js')])
    const l = await listenNative(ctx.broker, { ...nativeOptionsFor(ctx), host: ctx.shared.host, port: ctx.options.port, tls })
    return {
      listeners: [{ name: tls ? 'native+tls' : 'native', address: `${ctx.shared.host}:${l.port}`, port: l.port }],
      connections: l.connections,
      close: l.close,
    }
  },
})
