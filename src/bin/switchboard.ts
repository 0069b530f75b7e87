/**
 * The `switchboard` command: `serve` runs the server; `chat`, `send` and `inbox` are clients
 * (src/cli). This file and src/server.ts are the only places that read the environment and open ports.
 */
import { Command, Option } from 'commander'
import { OPTION_GROUPS, envName, resolveConfig } from '../config.js'
import { startServer, VERSION } from '../server.js'
import { makeLogger } from '../log.js'
import { runSteps, ShutdownIncomplete } from '../shutdown.js'
import { registerClientCommands } from '../cli/commands.js'
import { SEMI_SPACE_OPTION, semiSpaceFlag } from '../cli/young-generation.js'

const program = new Command()
program.name('switchboard').description('A message broker and chat server').version(VERSION)

const serve = program
  .command('serve', { isDefault: true })
  .description('run the server (embedded SQLite under --data-dir unless told otherwise)')
// One --help section per plugin, each option with its default and its environment variable.
for (const group of OPTION_GROUPS)
  for (const o of group.options) {
    const flag =
      o.kind === 'bool' ? `--${o.name}` : `--${o.name} <${o.kind === 'int' ? 'n' : o.kind === 'duration' ? 'ms|30d' : 'value'}>`
    const def = o.default === undefined ? '' : ` (default: ${String(o.default)})`
    serve.addOption(new Option(flag, `${o.help}${def}  [env ${envName(o.name)}]`).helpGroup(`${group.title}:`))
  }
serve.action(async (flags: Record<string, unknown>) => {
  let config
  try {
    config = resolveConfig(flags)
  } catch (err) {
    process.stderr.write(`switchboard: ${(err as Error).message}\n`)
    process.exit(2)
  }
  const { log, output } = makeLogger(config['log-level'], config['log-format'])
  // The listening lines are a courtesy to whoever started us: a reader that has gone must not end the server.
  process.stdout.on('error', () => {})
  // The handlers go in before anything else happens: a signal that arrives while we start (or in the instant
  // after "switchboard started" is written, which a supervisor may act on at once) is a request to stop, never
  // the default action that kills the process before the store is closed.
  let server: Awaited<ReturnType<typeof startServer>> | undefined
  let requested: string | undefined
  let stopping = 0
  const stop = (signal: string): void => {
    if (server === undefined) {
      requested ??= signal
      return
    }
    if (stopping !== 0) {
      // Ctrl-C under `npm start` delivers SIGINT twice at once: from the terminal to the process group, and
      // forwarded by npm. Only a signal sent later (a person who insists) means "now".
      if (Date.now() - stopping < 1000) return
      log.warn({ signal }, 'second signal: exiting now')
      process.exit(1)
    }
    stopping = Date.now()
    log.info({ signal }, 'shutting down: closing sessions and flushing the store')
    const exit = async (code: number): Promise<never> => {
      // What still waits for a slow reader of the log gets a moment, never more (src/log.ts).
      await runSteps([{ name: 'write the last log lines', run: () => output.drained() }], { timeoutMs: 1000 })
      process.exit(code)
    }
    void server.close().then(
      () => {
        log.info({}, 'stopped')
        return exit(0)
      },
      (err: unknown) => {
        if (err instanceof ShutdownIncomplete)
          log.error({ steps: err.unfinished.map(({ name, status, ms }) => ({ name, status, ms })) }, err.message)
        else log.error({ err }, 'shutdown failed')
        return exit(1)
      },
    )
  }
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGTERM', () => stop('SIGTERM'))
  try {
    server = await startServer(config, log)
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    const hint = e.code === 'EADDRINUSE' ? ' (another program listens there: choose another port)' : ''
    process.stderr.write(`switchboard: cannot start: ${e.message}${hint}\n`)
    process.exit(1)
  }
  for (const l of server.listeners) process.stdout.write(`${l.name.padEnd(12)} listening on ${l.address}\n`)
  process.stdout.write(`data         ${config.store === 'sqlite' ? config['data-dir'] : config.store}\n`)
  const semiSpaceMiB = semiSpaceFlag(process.execArgv, process.env.NODE_OPTIONS)
  log.info(
    { listeners: server.listeners.map((l) => ({ name: l.name, address: l.address })), semiSpaceMiB: semiSpaceMiB ?? 'default' },
    'switchboard started',
  )
  if (semiSpaceMiB === undefined)
    log.warn(
      {},
      `node runs with its default young generation: start the server with node ${SEMI_SPACE_OPTION} (as npm start and the switchboard command do) for about half the garbage collection under load`,
    )
  if (requested !== undefined) stop(requested)
})

registerClientCommands(program)

await program.parseAsync(process.argv)
