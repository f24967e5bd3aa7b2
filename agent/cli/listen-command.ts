// `nearmesh listen`: streams received messages until interrupted (or the agent stops).
import type { Command } from 'commander';
import type { ListenEvent } from '../control/wire.js';
import { addClientOptions, type ClientOptions, connectToAgent, printJson } from './client-options.js';

export function registerListenCommand(program: Command): void {
  addClientOptions(program.command('listen').description('print messages as they arrive')).action(
    async (options: ClientOptions) => {
      const client = await connectToAgent(options);
      const closed = new Promise<Error>((resolve) => client.onClose(resolve));
      await client.stream({ cmd: 'listen' }, (message) => {
        if (options.json === true) printJson(message);
        else
          process.stdout.write(
            `${message.received_at} ${message.from_name} (${message.from})${describeTarget(message)}: ${message.payload}\n`,
          );
      });
      throw await closed;
    },
  );
}

/** " to hall" for a group message, " to everyone" for a broadcast, nothing for a message to us alone. */
function describeTarget(message: ListenEvent): string {
  if (message.to === undefined) return '';
  return message.to === '*' ? ' to everyone' : ` to ${message.to}`;
}
