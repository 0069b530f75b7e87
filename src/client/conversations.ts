/**
 * Direct conversations (seed 003): ask a user, accept or decline, say things live (not stored), close. The
 * answers come back as 'conversation' events (protocol.ts).
 */
import { ConvAction, type FrameOf } from '../protocols/native/frames.js'
import type { Protocol } from './protocol.js'
import type { Target } from './types.js'
import { addressOf, toBuffer } from './util.js'

/** Ask `user` for a direct conversation; resolves with its id. */
export async function requestConversation(p: Protocol, user: Target): Promise<string> {
  const to = addressOf(user)
  const r = (await p.call(
    { type: 'CONV', corr: 0, action: ConvAction.REQUEST, convId: '', to, body: Buffer.alloc(0) },
    'CONV',
  )) as FrameOf<'RESULT'>
  return r.text
}

/** ACCEPT, DECLINE, MESSAGE or CLOSE on a conversation; an error comes back as an 'error' event (op 'CONV'). */
export function conversationAction(p: Protocol, action: number, convId: string, body: Uint8Array | string = ''): void {
  p.writeFrame({ type: 'CONV', corr: p.corrNext(), action, convId, to: { kind: 'all' }, body: toBuffer(body) }, 'CONV')
}
