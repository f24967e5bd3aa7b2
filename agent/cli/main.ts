#!/usr/bin/env node
// The `nearmesh` command: one file per subcommand; this one wires them and turns every failure into
// one line on stderr and a non-zero exit.
import { Command, CommanderError } from 'commander';
import { NearmeshError } from '../core/errors.js';
import { VERSION } from '../core/version.js';
import { registerAgentCommand } from './agent-command.js';

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
// modules (about 2 MB of RSS); every other invocation registers them all, so help lists everything.
if (process.argv[2] !== 'agent') await registerClientCommands(program);

async function registerClientCommands(cli: Command): Promise<void> {
  const modules = await Promise.all([
    import('./keygen-command.js'),
    import('./id-command.js'),
    import('./status-command.js'),
    import('./send-command.js'),
    import('./push-command.js'),
    import('./stream-command.js'),
    import('./broadcast-command.js'),
    import('./table-commands.js'),
    import('./call-command.js'),
    import('./actions-command.js'),
    import('./lease-command.js'),
    import('./watch-command.js'),
    import('./listen-command.js'),
    import('./inbox-command.js'),
    import('./trace-command.js'),
    import('./console-command.js'),
    import('./doctor-command.js'),
    import('./revoke-command.js'),
    import('./join-commands.js'),
  ]);
  const [
    keygen,
    id,
    status,
    send,
    push,
    streamCmd,
    broadcast,
    tables,
    call,
    actions,
    lease,
    watch,
    listen,
    inbox,
    trace,
    consoleCmd,
    doctor,
    trust,
    joining,
  ] = modules;
  keygen.registerKeygenCommand(cli);
  id.registerIdCommand(cli);
  status.registerStatusCommand(cli);
  send.registerSendCommand(cli);
  push.registerPushCommand(cli);
  streamCmd.registerStreamCommand(cli);
  broadcast.registerBroadcastCommand(cli);
  tables.registerTableCommands(cli);
  call.registerCallCommand(cli);
  actions.registerCapabilityCommands(cli);
  lease.registerLeaseCommand(cli);
  watch.registerWatchCommand(cli);
  listen.registerListenCommand(cli);
  inbox.registerInboxCommand(cli);
  trace.registerTraceCommand(cli);
  consoleCmd.registerConsoleCommand(cli);
  doctor.registerDoctorCommand(cli);
  trust.registerTrustCommands(cli);
  joining.registerJoinCommands(cli);
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
