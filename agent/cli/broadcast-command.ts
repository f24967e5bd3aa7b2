// `nearmesh broadcast [--group NAME] <text>`: best effort to every agent of the mesh, or to a group's members.
import type { Command } from 'commander';
import { addClientOptions, type ClientOptions, printJson, requestOnce } from './client-options.js';
import { messageBytes } from './send-command.js';

interface BroadcastOptions extends ClientOptions {
  group?: string;
}

export function registerBroadcastCommand(program: Command): void {
  addClientOptions(
    program
      .command('broadcast')
      .description('send a text message to every agent of the mesh, or to a group (no acknowledgement)')
      .argument('<text>', 'message text, or - to read the message from standard input')
      .option('-g, --group <name>', 'only the members of this group'),
  ).action(async (text: string, options: BroadcastOptions) => {
    const payload = (await messageBytes(text)).toString('base64');
    const result = await requestOnce(options, {
      cmd: 'multicast',
      payload,
      ...(options.group !== undefined && { group: options.group }),
    });
    if (options.json === true) printJson({ group: options.group ?? null, links: result.links });
    else process.stdout.write(`sent on ${result.links} link${result.links === 1 ? '' : 's'}\n`);
  });
}
