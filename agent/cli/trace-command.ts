// `nearmesh trace <peer>`: the frames on the direct link to one peer, decoded, as they go by (until
// interrupted or the agent stops). Payload bytes are never shown: sizes only.
import type { Command } from 'commander';
import { formatTraceLine } from '../console/format.js';
import { addClientOptions, type ClientOptions, connectToAgent, printJson } from './client-options.js';

export function registerTraceCommand(program: Command): void {
  addClientOptions(
    program
      .command('trace')
      .description('print the frames on the direct link to a peer as they go by (sizes, never payloads)')
      .argument('<peer>', 'peer id or name (a direct link)'),
  ).action(async (peer: string, options: ClientOptions) => {
    const client = await connectToAgent(options);
    const closed = new Promise<Error>((resolve) => client.onClose(resolve));
    try {
      await client.stream({ cmd: 'trace', peer }, (event) => {
        if (options.json === true) printJson(event);
        else process.stdout.write(formatTraceLine(event));
      });
    } catch (error) {
      client.close();
      throw error;
    }
    if (options.json !== true) process.stderr.write(`tracing ${peer}; Ctrl-C stops\n`);
    throw await closed;
  });
}
