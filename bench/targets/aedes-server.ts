/**
 * Child process: an in-memory Aedes broker on plain TCP (node:net), default options.
 * Run by aedes.ts via fork(); reports its port over IPC and dies with its parent.
 */
import net from 'node:net'
import { Aedes } from 'aedes'

const broker = await Aedes.createBroker()
const server = net.createServer(broker.handle)
// Aedes surfaces client errors as events; a benchmark that kills 10k sockets at once would
// otherwise crash the broker on an unhandled 'error'.
broker.on('clientError', () => {})
broker.on('connectionError', () => {})
server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
  const addr = server.address()
  if (addr === null || typeof addr === 'string') process.exit(2)
  process.send?.({ type: 'listening', port: addr.port })
})
process.on('disconnect', () => process.exit(0))
process.on('SIGTERM', () => {
  server.close()
  broker.close(() => process.exit(0))
  setTimeout(() => process.exit(0), 2000).unref()
})
