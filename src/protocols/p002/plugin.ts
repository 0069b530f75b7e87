/** The seed 002 chat room gateway: off unless --p002-port is set (9000 with --legacy). */
import { defineGateway, tcpGatewayHandle } from '../../plugin.js'

export const p002Gateway = defineGateway({
  name: 'p002',
  title: 'Seed 002 gateway (chat room)',
  options: [
    { name: 'p002-port', kind: 'int', default: undefined, help: 'seed 002 chat room gateway port (off unless set)' },
    { name: 'p002-max-username', kind: 'int', default: 25, help: 'seed 002 --max-username-size' },
    { name: 'p002-max-message', kind: 'int', default: 3000, help: 'seed 002 --max-message-size' },
  ],
  legacy: { 'p002-port': 9000 },
  enabled: (o) => o['p002-port'] !== undefined,
  async start(ctx) {
    const o = ctx.options
    const { startP002 } = await import('./server.js')
    const l = await startP002(ctx.broker, {
      host: ctx.shared.host,
      limits: { guard: ctx.shared.guard, loginTimeoutMs: ctx.shared.loginTimeoutMs },
      port: o['p002-port'] ?? 0,
      maxUsername: o['p002-max-username'],
      maxMessage: o['p002-max-message'],
    })
    return tcpGatewayHandle('p002', ctx.shared.host, l)
  },
})
