/** The seed 001 binary chat gateway: off unless --p001-port is set (7001 with --legacy). */
import { defineGateway, tcpGatewayHandle } from '../../plugin.js'

export const p001Gateway = defineGateway({
  name: 'p001',
  title: 'Seed 001 gateway (binary chat)',
  options: [{ name: 'p001-port', kind: 'int', default: undefined, help: 'seed 001 binary chat gateway port (off unless set)' }],
  legacy: { 'p001-port': 7001 },
  enabled: (o) => o['p001-port'] !== undefined,
  async start(ctx) {
    const { startP001 } = await import('./server.js')
    return tcpGatewayHandle(
      'p001',
      ctx.shared.host,
      await startP001(ctx.broker, {
        host: ctx.shared.host,
        limits: { guard: ctx.shared.guard, loginTimeoutMs: ctx.shared.loginTimeoutMs },
        port: ctx.options['p001-port'] ?? 0,
      }),
    )
  },
})
