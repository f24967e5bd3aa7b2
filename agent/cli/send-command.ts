// `nearmesh send <peer> <text>`: exits 0 once the peer acknowledged the message (directly or through the mesh).
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { addClientOptions, type ClientOptions, printJson, requestOnce } from './client-options.js';

interface SendOptions extends ClientOptions {
  timeout: number;
  unreliable?: boolean;
}

export function registerSendCommand(program: Command): void {
  addClientOptions(
    program
      .command('send')
      .description('send a text message to a peer (id or name) and wait for its acknowledgement')
      .argument('<peer>', 'peer id or name')
      .argument('<text>', 'message text, or - to read the message from standard input')
      .option('-t, --timeout <ms>', 'how long to wait for the acknowledgement', parseTimeout, 10_000)
      .option('-u, --unreliable', 'one attempt now, no acknowledgement; exit 1 when no link could take it'),
  ).action(async (peer: string, text: string, options: SendOptions) => {
    const payload = (await messageBytes(text)).toString('base64');
    if (options.unreliable === true) {
      const result = (await requestOnce(options, { cmd: 'send', peer, payload, unreliable: true })) as {
        peer: string;
        sent: boolean;
      };
      if (options.json === true) printJson(result);
      else
        process.stdout.write(
          result.sent ? `sent to ${result.peer} (unreliable)\n` : 'dropped: no link can take it now\n',
        );
      if (!result.sent) process.exitCode = 1;
      return;
    }
    const result = (await requestOnce(options, {
      cmd: 'send',
      peer,
      payload,
      timeout_ms: options.timeout,
    })) as {
      peer: string;
    };
    if (options.json === true) printJson({ peer: result.peer, acknowledged: true });
    else process.stdout.write(`acknowledged by ${result.peer}\n`);
  });
}

function parseTimeout(text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0 || value > 3_600_000) {
    throw new InvalidArgumentError('expected milliseconds, 1..3600000');
  }
  return value;
}

/** The message bytes: the text, or standard input for "-". */
export async function messageBytes(text: string): Promise<Buffer> {
  return text === '-' ? await readStdin() : Buffer.from(text, 'utf8');
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
