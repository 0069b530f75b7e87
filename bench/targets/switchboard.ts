/**
 * TODO(switchboard engineer): Switchboard target — NOT IMPLEMENTED YET.
 *
 * Fill this in once the server (bin/switchboard.js serve) and the TypeScript SDK (src/client/) exist;
 * nothing else in bench/ needs to change beyond this file (it is already registered in index.ts as
 * `switchboard`). Then run: `npm run bench -- --targets mosquitto,nats,aedes,switchboard`.
 *
 * What it must do (see target.ts for the contract; mqtt.ts and nats.ts are worked examples):
 *  - start(): start a Switchboard server the harness owns, in its own child process (like aedes.ts:
 *    fork/spawn, listen on port 0 on 127.0.0.1, report the port), with an in-memory store so the disk
 *    is not what we measure. Set `params.port`. Optionally, when `params.options['switchboard.url']`
 *    or a port is given, skip start() and attach to an already running server instead.
 *  - stop(): SIGTERM, wait, SIGKILL after a timeout (see aedes.ts).
 *  - serverPid(): the pid of that child (used for VmRSS per idle connection and server CPU %).
 *  - connect(id, { receiveDirect, receiveBroadcast }): open one SDK connection logged in as user
 *    `bench-${runId}-${id}` (so runs do not collide). If receiveBroadcast, join whatever "ALL"
 *    means in Switchboard. Resolve only when the server has confirmed login/join, so no message sent
 *    after connect() resolves can be missed.
 *  - BenchClient.sendDirect(to, body): send `body` to user `bench-${runId}-${to}` and resolve when the
 *    server's ack for that message arrives (reject on error/nack). Say in `semantics` what the ack
 *    means (server accepted? persisted? delivered?), because the peers' acks mean "broker accepted".
 *  - BenchClient.publishBroadcast(body): send to ALL without waiting for an ack (at-most-once if the
 *    protocol has that mode); resolve when the SDK accepted it.
 *  - BenchClient.onMessage(cb): call cb('direct' | 'broadcast', body) with the exact bytes sent —
 *    the generator stores a float64 send timestamp in the first 8 bytes of every body.
 *  - close(): close the connection.
 *  - The same factory is called inside worker processes with `params()` from the coordinator; it
 *    must not start a server there (workers never call start()).
 */
import type { BenchTarget, TargetFactory } from './target.js'

export const switchboardTarget: TargetFactory = (params): BenchTarget => ({
  name: 'switchboard',
  semantics: 'not implemented yet',
  params: () => params,
  serverPid: () => undefined,
  start() {
    return Promise.reject(new Error('switchboard bench target: not implemented yet (see bench/targets/switchboard.ts)'))
  },
  connect() {
    return Promise.reject(new Error('switchboard bench target: not implemented yet (see bench/targets/switchboard.ts)'))
  },
})
