import type { Command } from 'commander'

/** The client commands of the `switchboard` program: chat, send, inbox. */
export function registerClientCommands(_program: Command): void {}
