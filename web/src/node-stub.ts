/**
 * Stands in for node:net and node:tls in the browser bundle. The SDK loads its TCP transport only when
 * no WebSocket URL is given, which the page never does; aliasing keeps that dead chunk from warning.
 */
export default {}
