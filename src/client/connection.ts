/**
 * The SDK's view of a byte stream. The client speaks native frames over any `Connection`: a TCP/TLS socket
 * (tcp.ts, Node) or a WebSocket whose binary messages carry the same frames (ws-transport.ts, browsers and
 * Node). This file imports nothing from Node, so client.ts runs in a browser too.
 */

/** What a connection tells the client. */
export interface ConnectionHandlers {
  /** Bytes arrived: any slice of the frame stream (a frame may be split or several coalesced). */
  onData(chunk: Uint8Array): void
  /** The stream is gone, for whatever reason. Called once. */
  onClose(error?: Error): void
}

/** One open byte stream to the server. */
export interface Connection {
  /** Queue one whole encoded frame. Never throws; after close it is a no-op. */
  write(frame: Uint8Array): void
  /** Bytes queued and not yet handed to the network. */
  readonly bufferedAmount: number
  /** Resolves once bufferedAmount is at or below `threshold` (or the connection is gone). */
  whenDrained(threshold: number): Promise<void>
  /** Flush and close; onClose follows. */
  close(): void
  /** Drop the stream now (a dead peer); onClose follows. */
  destroy(): void
}

/**
 * Opens a fresh connection. The client calls it at the first connect and at every reconnect; it resolves
 * once bytes can flow and rejects if the stream cannot be opened.
 */
export type Connector = (handlers: ConnectionHandlers) => Promise<Connection>
