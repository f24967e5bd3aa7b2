#!/usr/bin/env node
// The `nearmesh` command: one file per subcommand; this one wires them and turns every failure into
// one line on stderr and a non-zero exit.
import { Command, CommanderError } from 'commander';
import { NearmeshError } from '../core/errors.js';
import { VERSION } from '../core/version.js';
import { registerAgentCommand } from './agent-command.js';
import { CLIENT_COMMANDS } from './client-commands.js';

const program = new Command('nearmesh')
  .description('nearby devices find each other and work together over BLE and Wi-Fi, with no server')
  .version(VERSION)
  .exitOverride();

// The reader went away (`nearmesh listen | head`): end quietly, as `yes | head` does, instead of a stack
// trace. What was not written is not taken: a listen's messages stay in the app inbox for the next one.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  // A command with its own answer to a closed output (stream --receive: bytes were lost, so it fails) has it.
  if (process.stdout.listenerCount('error') > 1) return;
  if (error.code === 'EPIPE') process.exit(0);
  process.stderr.write(`nearmesh: cannot write the output: ${error.message}\n`);
  process.exit(1);
});

registerAgentCommand(program);
// The daemon runs for months on boards with 512 MB: `nearmesh agent` does not load the client commands'
// modules (about 2 MB of RSS). A client command loads its own module only: loading them all was half its
// start-up, paid by every script that runs it in a loop. Anything else (help, a typo) registers them all,
// so help lists everything; a command missing from the table still works that way, only slower.
if (process.argv[2] !== 'agent') {
  const own = CLIENT_COMMANDS.find(([names]) => names.includes(process.argv[2] ?? ''));
  const modules = own === undefined ? CLIENT_COMMANDS : [own];
  for (const register of await Promise.all(modules.map(([, load]) => load()))) register(program);
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // Commander already printed usage errors; help and version exit 0.
    process.exit(error.exitCode);
  }
  const code = error instanceof NearmeshError ? error.code : 'internal';
  process.stderr.write(`nearmesh: ${(error as Error).message}\n`);
  process.exit(code === 'config' ? 2 : 1);
}
