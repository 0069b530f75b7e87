/**
 * The SDK's browser entry (`switchboard/client/browser`): the transport-agnostic client over a WebSocket
 * (`wsConnector`, or `SwitchboardClient.connect({ url })`). Nothing from Node: no TCP, no credential file.
 * The native codec works on Buffer, which browsers lack: the `buffer` package stands in, made global here
 * before the client's modules are evaluated (ES modules run in import order).
 */
import './buffer-global.js'

export * from './client.js'
export { wsConnector, type WebSocketConstructor, type WebSocketLike, type WsOptions } from './ws-transport.js'
