#!/usr/bin/env node
// The `nearmesh` command: one file per subcommand; this one wires them and turns every failure into
// one line on stderr and a non-zero exit.
import { Command, CommanderError } from 'commander';
import { NearmeshError } from '../errors.js';
import { VERSION } from '../version.js';
import { registerCapabilityCommands } from './actions-command.js';
import { registerAgentCommand } from './agent-command.js';
import { registerBroadcastCommand } from './broadcast-command.js';
import { registerCallCommand } from './call-command.js';
import { registerConsoleCommand } from './console-command.js';
import { registerDoctorCommand } from './doctor-command.js';
import { registerIdCommand } from './id-command.js';
import { registerKeygenCommand } from './keygen-command.js';
import { registerLeaseCommand } from './lease-command.js';
import { registerListenCommand } from './listen-command.js';
import { registerPeersCommand } from './peers-command.js';
import { registerRoutesCommand } from './routes-command.js';
import { registerSendCommand } from './send-command.js';
import { registerStatusCommand } from './status-command.js';
import { registerTraceCommand } from './trace-command.js';
import { registerWatchCommand } from './watch-command.js';

const program = new Command('nearmesh')
  .description('nearby devices find each other and work together over BLE and Wi-Fi, with no server')
  .version(VERSION)
  .exitOverride();

registerAgentCommand(program);
registerKeygenCommand(program);
registerIdCommand(program);
registerStatusCommand(program);
registerPeersCommand(program);
registerSendCommand(program);
registerBroadcastCommand(program);
registerRoutesCommand(program);
registerCallCommand(program);
registerCapabilityCommands(program);
registerLeaseCommand(program);
registerWatchCommand(program);
registerListenCommand(program);
registerTraceCommand(program);
registerConsoleCommand(program);
registerDoctorCommand(program);

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
