// `nearmesh status`: the running agent's identity, listeners, peer counts and counters.
import type { Command } from 'commander';
import { formatStatus } from '../console/format.js';
import { addClientOptions, type ClientOptions, printJson, requestOnce } from './client-options.js';

export function registerStatusCommand(program: Command): void {
  addClientOptions(program.command('status').description('show the running agent’s state')).action(
    async (options: ClientOptions) => {
      const status = await requestOnce(options, { cmd: 'status' });
      if (options.json === true) return printJson(status);
      process.stdout.write(formatStatus(status));
    },
  );
}
