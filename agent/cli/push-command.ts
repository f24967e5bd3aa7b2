// `nearmesh push <peer> <file>`: sends a file (bulk transfer) and exits 0 once the peer verified it. On a
// terminal it draws a progress bar; otherwise (or with --json) it prints one JSON object per event. A
// transfer interrupted by a link drop or a restart of the peer waits and resumes by itself.
import { basename, resolve } from 'node:path';
import type { Command } from 'commander';
import { FileNameError } from '../messaging/transfer/errors.js';
import type { PushEvent } from '../messaging/transfer/manager.js';
import { inboxFileName } from '../protocol/file-name.js';
import { addClientOptions, type ClientOptions, connectToAgent, printJson } from './client-options.js';

interface PushOptions extends ClientOptions {
  name?: string;
  allowBle?: boolean;
}

const BAR_WIDTH = 30;

export function registerPushCommand(program: Command): void {
  addClientOptions(
    program
      .command('push')
      .description(
        'send a file to a peer (id or name): chunked, SHA-256 checked, resumed after a link drop or restart',
      )
      .argument('<peer>', 'peer id or name')
      .argument('<file>', "the file to send (the agent reads it: it must be readable by the agent's user)")
      .option('--name <name>', "the name to offer the peer (default: the file's base name)")
      .option('--allow-ble', 'let the data go over BLE (slow) when the peer has no Wi-Fi link'),
  ).action(async (peer: string, file: string, options: PushOptions) => {
    const offered = options.name ?? basename(file);
    // The receiver would refuse it: say so before the agent hashes the file.
    const fileName = inboxFileName(offered);
    if ('problem' in fileName) throw new FileNameError(offered, fileName.problem);
    const { name } = fileName;
    const client = await connectToAgent(options);
    const asJson = options.json === true || process.stdout.isTTY !== true;
    const outcome = new Promise<PushEvent>((resolveOutcome, reject) => {
      client.onClose((error) =>
        reject(new Error(`the agent went away (${error.message}); the transfer resumes when it is back`)),
      );
      void client
        .stream(
          {
            cmd: 'push',
            peer,
            path: resolve(file),
            ...(options.name !== undefined && { name: options.name }),
            ...(options.allowBle === true && { allow_ble: true }),
          },
          (event) => {
            if (asJson) printJson(event);
            else drawProgress(event, name);
            if (event.type === 'sent' || event.type === 'failed') resolveOutcome(event);
          },
        )
        .catch(reject);
    });
    try {
      const event = await outcome;
      if (event.type === 'failed') throw new Error(event.message);
      if (!asJson && event.type === 'sent') {
        process.stdout.write(
          `\nsent ${event.name} (${event.size} bytes, sha256 ${event.sha256}) to ${event.peer}\n`,
        );
      }
    } finally {
      client.close();
    }
  });
}

function drawProgress(event: PushEvent, name: string): void {
  if (event.type === 'progress') {
    const share = event.total === 0 ? 1 : event.bytesAcked / event.total;
    const filled = Math.round(share * BAR_WIDTH);
    const rate = `${(event.rateBps / 1e6).toFixed(1)} MB/s`;
    process.stdout.write(
      `\r${name} [${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${(share * 100).toFixed(0)}% ${rate}   `,
    );
  } else if (event.type === 'waiting') {
    process.stdout.write(`\nwaiting: ${event.reason}\n`);
  }
}
