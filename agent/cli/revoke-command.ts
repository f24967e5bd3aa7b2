// `nearmesh revoke <peer> [--reason TEXT]` and `nearmesh rekey [--overlap DURATION]`: remove a member from
// the mesh for good, and rotate the mesh key so that what the removed device knows stops working
// (PROTOCOL.md §13.5, §13.6). Only agents in [security] admins may (every member when the list is empty).
// `nearmesh mesh-key` prints the key in use now, for a new device's mesh_key.
import type { Command } from 'commander';
import { parseDuration } from '../core/duration.js';
import { addClientOptions, type ClientOptions, printJson, requestOnce } from './client-options.js';

interface RevokeOptions extends ClientOptions {
  reason?: string;
}

interface RekeyOptions extends ClientOptions {
  overlap?: string;
}

export function registerTrustCommands(program: Command): void {
  addClientOptions(
    program
      .command('revoke')
      .description('remove a member from the mesh for good: every agent refuses its identity')
      .argument('<peer>', 'peer id or name')
      .option('-r, --reason <text>', 'why (kept with the revocation, at most 128 bytes)'),
  ).action(async (peer: string, options: RevokeOptions) => {
    const result = await requestOnce(options, {
      cmd: 'revoke',
      peer,
      ...(options.reason !== undefined && { reason: options.reason }),
    });
    if (options.json === true) return printJson(result);
    process.stdout.write(
      `revoked ${result.revoked}: every agent refuses it once the revocation reaches it\n` +
        'it still knows the mesh key: run `nearmesh rekey` so that its copy stops working\n',
    );
  });
  addClientOptions(
    program
      .command('mesh-key')
      .description('print the mesh key in use now (a secret), for a new device’s mesh_key'),
  ).action(async (options: ClientOptions) => {
    const result = await requestOnce(options, { cmd: 'mesh-key' });
    if (options.json === true) return printJson(result);
    process.stdout.write(`${result.mesh_key}\n`);
  });
  addClientOptions(
    program
      .command('rekey')
      .description('rotate the mesh key: every member except revoked ones gets the new one')
      .option(
        '-o, --overlap <duration>',
        'how long the old key stays accepted (default: [security] rekey_overlap)',
      ),
  ).action(async (options: RekeyOptions) => {
    const overlapMs = options.overlap === undefined ? undefined : parseDuration(options.overlap);
    const result = await requestOnce(options, {
      cmd: 'rekey',
      ...(overlapMs !== undefined && { overlap_ms: overlapMs }),
    });
    if (options.json === true) return printJson(result);
    const days = (result.overlap_ms / 86_400_000).toFixed(result.overlap_ms % 86_400_000 === 0 ? 0 : 2);
    process.stdout.write(
      `mesh key rotated to epoch ${result.epoch} (key id ${result.key_id}); the old key is accepted for ${days} days\n`,
    );
  });
}
