import type { Command } from 'commander'
import { Option } from 'commander'
import { runChat } from './chat.js'
import { runHistory, runInbox, runLogin, runRegister, runSend } from './oneshot.js'

export interface ServerFlags {
  host: string
  port: string
  tls?: boolean
  insecure?: boolean
  url?: string
}

function serverOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--host <host>', 'server address').default('127.0.0.1').env('SWITCHBOARD_CONNECT_HOST'))
    .addOption(new Option('--port <n>', 'native protocol port').default('7070').env('SWITCHBOARD_CONNECT_PORT'))
    .option('--tls', 'connect with TLS')
    .option('--insecure', 'with --tls: accept a certificate that does not verify (self-signed, for testing)')
    .option('--url <ws-url>', 'connect over WebSocket instead, e.g. ws://127.0.0.1:7080/v1/ws')
}

/** The client commands of the `switchboard` program: chat, send, inbox, history, login, register. */
export function registerClientCommands(program: Command): void {
  serverOptions(
    program
      .command('chat')
      .argument('<name>', 'your name: resumed with the remembered token; a name not known here is registered if you say so')
      .option('--register', 'register NAME without asking when no account of that name is remembered here')
      .description(
        'interactive chat: /help lists the commands; plain text goes to the room (ALL), or to the open direct conversation. ' +
          'Credentials are kept in $SWITCHBOARD_HOME/credentials.json (default ~/.switchboard). ' +
          'Exit status: 0 you quit, 1 could not log in, 2 the server ended the session (NAME logged in elsewhere, the account was deleted, the server was unreachable)',
      ),
  ).action(async (name: string, flags: ServerFlags & { register?: boolean }) => {
    process.exitCode = await runChat(name, flags)
  })

  serverOptions(
    program
      .command('send')
      .description(
        'send one message, wait for its receipt and print it. Exit status: 0 delivered, 3 stored (recipient offline), 4 not delivered yet, 1 refused or failed ' +
          '(an unknown recipient and one who blocks you look the same: "not delivered")',
      )
      .requiredOption('--as <name>', 'sender name: one registered here before (with chat NAME, or --register)')
      .option('--register', 'register the sender name if no account of that name is remembered here')
      .requiredOption('--to <name>', 'recipient: a user name, ALL for the room, or topic:NAME')
      .option('--no-receipt', 'do not wait for a receipt: exit once the server accepted the message')
      .option('--timeout <ms>', 'wait this long for a receipt', '15000')
      .argument('<text...>', 'the message'),
  ).action(
    async (
      text: string[],
      flags: ServerFlags & { as: string; to: string; receipt: boolean; timeout: string; register?: boolean },
    ) => {
      process.exitCode = await runSend(flags, text.join(' '))
    },
  )

  serverOptions(
    program
      .command('inbox')
      .argument('<name>', 'whose queued messages to read')
      .description('print the queued messages of NAME, acknowledge them and exit (poll mode, peek then ack)')
      .option('--keep', 'print without acknowledging (they stay queued)'),
  ).action(async (name: string, flags: ServerFlags & { keep?: boolean }) => {
    process.exitCode = await runInbox(name, flags)
  })

  serverOptions(
    program
      .command('history')
      .argument('<name>', 'whose history: a name logged in here before')
      .description(
        "print a page of NAME's history, oldest first: everything, or the conversation --with a user (both directions) or a topic. " +
          'A chat of NAME keeps running. Exit status 0, or 1 on failure',
      )
      .option('--with <name>', 'only the conversation with this user (or topic:NAME)')
      .option('--limit <n>', 'at most this many messages (1 … 256)', '50')
      .option('--before <seq>', 'only messages older than this seq (page back with the seq the last page printed)'),
  ).action(async (name: string, flags: ServerFlags & { with?: string; limit: string; before?: string }) => {
    process.exitCode = await runHistory(name, flags)
  })

  serverOptions(
    program
      .command('login')
      .argument('<name>', 'the user to log in as')
      .description(
        'log in with the password of NAME (asked without echo): a new device of NAME here, whose token is saved in ' +
          '$SWITCHBOARD_HOME/credentials.json for chat, send, inbox and history. Exit status 0, or 1 (wrong name or password, too many attempts)',
      )
      .option('--password-stdin', 'read the password from the first line of stdin (for scripts)'),
  ).action(async (name: string, flags: ServerFlags & { passwordStdin?: boolean }) => {
    process.exitCode = await runLogin(name, flags)
  })

  serverOptions(
    program
      .command('register')
      .argument('<name>', 'the name to register')
      .description(
        'register NAME and save its token in $SWITCHBOARD_HOME/credentials.json; with --password-stdin, set its password too ' +
          '(so that switchboard login NAME works on other machines). Exit status 0, or 1',
      )
      .option('--password-stdin', 'read a password from the first line of stdin and set it'),
  ).action(async (name: string, flags: ServerFlags & { passwordStdin?: boolean }) => {
    process.exitCode = await runRegister(name, flags)
  })
}
