/**
 * Preload (`node --import ./test/helpers/hide-packages.mjs …`) that makes the npm packages named in
 * SB_HIDE_PACKAGES (comma-separated) unresolvable, as if they were not installed: resolving one fails the way
 * Node fails for a missing package (ERR_MODULE_NOT_FOUND, "Cannot find package 'x'"). Used to prove that a
 * server loads a native dependency only when the plugin that needs it starts.
 *
 * The same file is both the preload (main thread: registers itself) and the hooks (loader thread).
 */
import { register } from 'node:module'
import { isMainThread } from 'node:worker_threads'

let hidden = []

export function initialize(data) {
  hidden = data.hidden
}

export async function resolve(specifier, context, next) {
  const parts = specifier.split('/')
  const pkg = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]
  if (hidden.includes(pkg)) {
    const err = new Error(`Cannot find package '${pkg}' imported from ${context.parentURL} (hidden by SB_HIDE_PACKAGES)`)
    err.code = 'ERR_MODULE_NOT_FOUND'
    throw err
  }
  return next(specifier, context)
}

if (isMainThread) {
  const names = (process.env.SB_HIDE_PACKAGES ?? '').split(',').filter((s) => s !== '')
  register(import.meta.url, { data: { hidden: names } })
}
