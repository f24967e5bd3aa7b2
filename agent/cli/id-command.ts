// `nearmesh id`: this device's peer id and name: asked of the running agent, or read from data_dir
// when no agent runs (so a device can be enrolled before its service starts).
import type { Command } from 'commander';
import { loadConfig } from '../config/index.js';
import { AgentNotRunningError } from '../control/client.js';
import { loadOrCreateIdentity } from '../identity/identity.js';
import { addClientOptions, type ClientOptions, printJson, requestOnce } from './client-options.js';

interface IdResult {
  id: string;
  name: string;
}

export function registerIdCommand(program: Command): void {
  addClientOptions(program.command('id').description("print this device's peer id and name")).action(
    async (options: ClientOptions) => {
      let result: IdResult;
      try {
        result = await requestOnce(options, { cmd: 'id' });
      } catch (error) {
        if (!(error instanceof AgentNotRunningError) || options.socket !== undefined) throw error;
        const config = await loadConfig(options.config === undefined ? {} : { path: options.config });
        result = { id: (await loadOrCreateIdentity(config.dataDir)).peerId, name: config.name };
      }
      if (options.json === true) printJson(result);
      else process.stdout.write(`${result.id}  ${result.name}\n`);
    },
  );
}
