/**
 * Which better-sqlite3 to load. Version 12 (a node::ObjectWrap addon, built from source here) is the one
 * that runs on Node 20; on Node 24 its statements' destructors assert when the garbage collector frees them
 * outside a JavaScript context (better-sqlite3#1515), which aborts the process. Version 13 is a Node-API
 * addon without that fault, with prebuilt binaries in the package, but it needs Node 22 or later (on 20 it
 * crashes). So: 13 from Node 22 on, 12 before. Both have the same API.
 */
import { createRequire } from 'node:module'
import type BetterSqlite3 from 'better-sqlite3'

const require = createRequire(import.meta.url)
const major = Number(process.versions.node.split('.')[0])

export const driverName = major >= 22 ? 'better-sqlite3-napi' : 'better-sqlite3'

function load(): typeof BetterSqlite3 {
  try {
    return require(driverName) as typeof BetterSqlite3
  } catch (err) {
    // better-sqlite3-napi is an optional dependency (npm skips it on Node 20, whose engine it does not support).
    if ((err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' && driverName === 'better-sqlite3-napi')
      throw new Error(
        `SQLite on Node ${process.versions.node} needs better-sqlite3 13 (the optional dependency better-sqlite3-napi), which is not installed: npm install better-sqlite3-napi@npm:better-sqlite3@^13.2.0`,
        { cause: err },
      )
    throw err
  }
}

const Database: typeof BetterSqlite3 = load()

export default Database
export type { BetterSqlite3 }
