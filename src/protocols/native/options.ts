/**
 * The native protocol's per-connection options as a gateway plugin derives them from the server's values:
 * shared by the TCP listener (plugin.ts) and the HTTP listener's WebSocket endpoint (/v1/ws).
 */
import type { Broker } from '../../core/broker.js'
import type { FileService } from '../../core/files.js'
import type { GatewayShared } from '../../plugin.js'
import type { NativeOptions } from './adapter.js'
import { NativeFileHandler } from './file-handler.js'

export function nativeOptionsFor(ctx: { shared: GatewayShared; broker: Broker; files: FileService | undefined }): NativeOptions {
  return {
    maxFrameBytes: ctx.broker.limits.maxFrameBytes,
    maxPreLoginFrameBytes: ctx.shared.maxPreLoginFrameBytes,
    guard: ctx.shared.guard,
    heartbeatMs: ctx.shared.heartbeatMs,
    highWaterMark: 1024 * 1024,
    loginTimeoutMs: ctx.shared.loginTimeoutMs,
    serverName: `switchboard/${ctx.shared.version}`,
    files: ctx.files && new NativeFileHandler(ctx.files),
  }
}
