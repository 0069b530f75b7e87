/** The SDK's Node entry: the transport-agnostic client plus the Node-only pieces (TCP/TLS, credential file, file helpers). */
export * from './client.js'
export { tcpConnector, type TcpOptions } from './tcp.js'
export { wsConnector, type WebSocketConstructor, type WebSocketLike, type WsOptions } from './ws-transport.js'
export { FileCredentialStore, switchboardHome } from './credentials.js'
export { fileSource, downloadToFile } from './node-files.js'
