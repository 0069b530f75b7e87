/** The seed 004 chat-with-files gateway: off unless --p004-port is set (55555 with --legacy). */
import { defineGateway, tcpGatewayHandle } from '../../plugin.js'

export const p004Gateway = defineGateway({
  name: 'p004',
  title: 'Seed 004 gateway (chat with files)',
  options: [
    { name: 'p004-port', kind: 'int', default: undefined, help: 'seed 004 chat-with-files gateway port (off unless set)' },
  ],
  legacy: { 'p004-port': 55555 },
  enabled: (o) => o['p004-port'] !== undefined,
  async start(ctx) {
    const { startP004 } = await import('./server.js')
    const l = await startP004(ctx.broker, {
      host: ctx.shared.host,
      limits: { guard: ctx.shared.guard, loginTimeoutMs: ctx.shared.loginTimeoutMs },
      port: ctx.options['p004-port'] ?? 0,
      files: ctx.files,
    })
    return tcpGatewayHandle('p004', ctx.shared.host, l)
  },
})
