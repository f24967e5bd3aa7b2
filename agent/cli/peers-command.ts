// `nearmesh peers`: the peer table (authenticated peers only: a device of another mesh never shows).
import type { Command } from 'commander';
import { formatPeers } from '../console/format.js';
import { addClientOptions, type ClientOptions, printJson, requestOnce } from './client-options.js';

export function registerPeersCommand(program: Command): void {
  addClientOptions(program.command('peers').description('list known peers and their links')).action(
    async (options: ClientOptions) => {
      const peers = await requestOnce(options, { cmd: 'peers' });
      if (options.json === true) return printJson(peers);
      process.stdout.write(formatPeers(peers));
    },
  );
}
