/**
 * Child process: the ceiling (issue 12 aim 6). A bare relay of length-prefixed frames, no processing beyond
 * finding where a frame ends: what this machine allows a Node process that moves messages between sockets.
 *
 * Frame: u32 BE length of what follows, u8 type, payload.
 *   0 HELLO  client → relay: its id; answered by one ACK
 *   1 ROUTE  sender → relay: the id its DATA frames go to from now on
 *   2 DATA   sender → relay → receiver, forwarded byte for byte; the relay answers the sender with one ACK
 *   3 ACK    relay → client, no payload (length 1)
 * The DATA frames of one read are forwarded in one write, and their ACKs go back in one write.
 *
 * Run by relay.ts via fork(); reports its port over IPC and dies with its parent.
 */
import net from 'node:net'

const HELLO = 0
const ROUTE = 1
const DATA = 2
const ACK_BYTES = Buffer.alloc(5 * 8192)
for (let i = 0; i < 8192; i++) ACK_BYTES.set([0, 0, 0, 1, 3], i * 5)

const byId = new Map<string, net.Socket>()

const server = net.createServer((sock) => {
  sock.setNoDelay(true)
  let pending: Buffer | undefined
  let peer: net.Socket | undefined
  let id: string | undefined
  const ack = (n: number): void => {
    for (let left = n; left > 0; left -= 8192) sock.write(ACK_BYTES.subarray(0, 5 * Math.min(left, 8192)))
  }
  sock.on('data', (chunk: Buffer) => {
    const buf = pending === undefined ? chunk : Buffer.concat([pending, chunk])
    pending = undefined
    let off = 0
    let runStart = -1
    let acks = 0
    const flush = (end: number): void => {
      if (runStart >= 0 && peer !== undefined && !peer.destroyed) peer.write(buf.subarray(runStart, end))
      runStart = -1
    }
    while (buf.length - off >= 5) {
      const len = buf.readUInt32BE(off)
      if (buf.length - off - 4 < len) break
      const type = buf[off + 4]
      if (type === DATA) {
        if (runStart < 0) runStart = off
        acks++
      } else {
        flush(off)
        const arg = buf.toString('utf8', off + 5, off + 4 + len)
        if (type === HELLO) {
          id = arg
          byId.set(arg, sock)
          acks++
        } else if (type === ROUTE) peer = byId.get(arg)
      }
      off += 4 + len
    }
    flush(off)
    if (acks > 0) ack(acks)
    if (off < buf.length) pending = buf.subarray(off)
  })
  sock.on('error', () => {})
  sock.on('close', () => {
    if (id !== undefined && byId.get(id) === sock) byId.delete(id)
  })
})
server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
  const addr = server.address()
  if (addr === null || typeof addr === 'string') process.exit(2)
  process.send?.({ type: 'listening', port: addr.port })
})
process.on('disconnect', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
