/**
 * The text commands a user sends to SERVER ("whoami", "who", "rename NAME" …): a client of the core, which
 * hands each text to this handler and delivers its answer as a notice from SERVER (Broker option
 * `serverRequests`). Every command is an ordinary Broker call, so it obeys the same rules as the wire's requests.
 */
import { BrokerError } from '../core/errors.js'
import type { Broker, ServerRequestHandler } from '../core/broker.js'

const HELP = 'commands: whoami, who, seen NAME, rename NAME, subscribe TOPIC, unsubscribe TOPIC, topics, stats'

export function serverCommands(broker: Broker): ServerRequestHandler {
  return async (s, text) => {
    const [cmd = '', ...args] = text.trim().split(/\s+/)
    try {
      switch (cmd.toLowerCase()) {
        case 'whoami':
          return `${s.user.name} #${s.user.id} via ${s.protocol}`
        case 'who':
          return (
            (await broker.who(s))
              .map((p) => `${p.name} #${p.id} (${p.protocol}${p.tokenless === true ? ', no token' : ''})`)
              .join('\n') || '(no one)'
          )
        case 'rename':
          return `you are now ${(await broker.rename(s, args[0] ?? '')).name}`
        case 'subscribe':
          await broker.subscribe(s, args[0] ?? '')
          return `subscribed to ${args[0]}`
        case 'unsubscribe':
          await broker.unsubscribe(s, args[0] ?? '')
          return `unsubscribed from ${args[0]}`
        case 'topics':
          return (await broker.topics(s)).map((t) => `${t.topic} (${t.subscribers})`).join('\n') || '(no topics)'
        case 'seen': {
          const r = await broker.lastSeen(s, { kind: 'name', name: args[0] ?? '' })
          return r.online !== undefined
            ? `${r.user.name} is online (${r.online.protocol})`
            : r.lastSeen !== undefined
              ? `${r.user.name} was last seen ${new Date(r.lastSeen).toISOString()}`
              : `${r.user.name} has not been seen`
        }
        case 'stats': {
          const st = await broker.stats()
          return `users ${st.users}, online ${st.online}, uptime ${Math.round(st.uptimeMs / 1000)} s`
        }
        default:
          return HELP
      }
    } catch (err) {
      return err instanceof BrokerError ? `error: ${err.message}` : 'error: internal error'
    }
  }
}
