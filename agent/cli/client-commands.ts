// The client commands, by module: each module is loaded only when one of its commands runs (or for help), so a
// command starts without compiling the other eighteen. The names must be what each module registers
// (test/unit/cli/client-commands.test.ts holds them to it).
import type { Command } from 'commander';

export type RegisterCommands = (program: Command) => void;

/** Each client command module: the commands it adds, and its register function (help keeps this order). */
export const CLIENT_COMMANDS: readonly (readonly [
  names: readonly string[],
  load: () => Promise<RegisterCommands>,
])[] = [
  [['keygen'], async () => (await import('./keygen-command.js')).registerKeygenCommand],
  [['id'], async () => (await import('./id-command.js')).registerIdCommand],
  [['status'], async () => (await import('./status-command.js')).registerStatusCommand],
  [['send'], async () => (await import('./send-command.js')).registerSendCommand],
  [['push'], async () => (await import('./push-command.js')).registerPushCommand],
  [['stream'], async () => (await import('./stream-command.js')).registerStreamCommand],
  [['broadcast'], async () => (await import('./broadcast-command.js')).registerBroadcastCommand],
  [
    ['peers', 'routes', 'topology', 'transfers', 'resolvers'],
    async () => (await import('./table-commands.js')).registerTableCommands,
  ],
  [['call'], async () => (await import('./call-command.js')).registerCallCommand],
  [
    ['actions', 'leases', 'sensors', 'read'],
    async () => (await import('./actions-command.js')).registerCapabilityCommands,
  ],
  [['lease'], async () => (await import('./lease-command.js')).registerLeaseCommand],
  [['watch'], async () => (await import('./watch-command.js')).registerWatchCommand],
  [['listen'], async () => (await import('./listen-command.js')).registerListenCommand],
  [['inbox'], async () => (await import('./inbox-command.js')).registerInboxCommand],
  [['trace'], async () => (await import('./trace-command.js')).registerTraceCommand],
  [['console'], async () => (await import('./console-command.js')).registerConsoleCommand],
  [['doctor'], async () => (await import('./doctor-command.js')).registerDoctorCommand],
  [['revoke', 'mesh-key', 'rekey'], async () => (await import('./revoke-command.js')).registerTrustCommands],
  [['invite', 'invitation', 'join'], async () => (await import('./join-commands.js')).registerJoinCommands],
];
