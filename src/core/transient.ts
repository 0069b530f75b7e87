/**
 * Transient direct messages (SEND flag TRANSIENT, REST "transient": true): live only, like MQTT's QoS 0 beside
 * QoS 1. Owns the path from send() to the recipient's sessions — here, and through the bus on other nodes — with
 * nothing written: no copy, no sent copy, no seq, no receipt. No session online is SB_ERR_OFFLINE.
 */
import { BrokerError } from './errors.js'
import { describe, type Core } from './context.js'
import type { Directory } from './directory.js'
import type { SendRequest, SendResult } from './delivery.js'
import type { Session } from './session.js'
import type { SessionRegistry } from './sessions.js'
import { Flag, type Message, type Outbound } from './types.js'

/**
 * A transient message: straight to the recipient's sessions here, and through the bus to its sessions on other
 * nodes; nothing is written. 'delivered' means handed to a session (or to the node that holds one), not read.
 */
export async function sendTransient(
  core: Core,
  sessions: SessionRegistry,
  directory: Directory,
  s: Session,
  req: SendRequest,
  kind: 'text' | 'file',
  msgId: number,
  now: number,
): Promise<SendResult> {
  const to = req.to
  if (to.kind !== 'user' && to.kind !== 'name')
    throw new BrokerError('SB_ERR_UNSUPPORTED', 'a transient message goes to one user, by name or id')
  if (kind !== 'text' || req.fileId !== undefined)
    throw new BrokerError('SB_ERR_UNSUPPORTED', 'a file is never transient: it is stored until it is fetched')
  if (req.notBefore !== undefined && req.notBefore > now)
    throw new BrokerError('SB_ERR_UNSUPPORTED', 'a transient message cannot be held for later: it is never stored')
  const u = await directory.resolveUser(to)
  // A blocked sender learns nothing (DESIGN's privacy rule), as for a stored message.
  if (u === undefined || (await directory.isBlocked(u.id, s.user.id)))
    throw new BrokerError('SB_ERR_UNKNOWN_RECIPIENT', `no such user: ${describe(to)}`)
  const msg: Message = {
    seq: 0,
    msgId,
    from: s.user.id,
    fromName: s.user.name,
    to: u.id,
    kind,
    ts: now,
    body: req.body,
    flags: Flag.TRANSIENT,
    peer: s.user.id,
  }
  const ev: Outbound = { type: 'message', msg }
  let handed = 0
  // [...]: a session cut for not reading leaves the list while we go through it.
  for (const r of [...sessions.all(u.id)]) if (!r.closed && !r.sendOnly && sessions.emitLive(r, ev)) handed++
  core.counters.messagesOut += handed
  // Other nodes: the bus says whether a session of the user is online somewhere (a local one counts too).
  if (core.bus.clustered && (await core.bus.isOnline(u.id))) {
    core.bus.publish({ type: 'event', to: u.id, ev })
    if (handed === 0) handed = 1
  }
  if (handed === 0) throw new BrokerError('SB_ERR_OFFLINE', `${u.name} is not online: a transient message is not stored`)
  return { msgId, status: 'delivered', seq: 0, recipients: handed }
}
