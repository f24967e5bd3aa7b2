// `nearmesh send <peer> <text>`: queues a reliable message durably and exits 0 once the peer confirmed it
// (directly or through the mesh); --lines queues one message per line of standard input, --no-wait only queues.
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { DEFAULT_ACK_TIMEOUT_MS } from '../core/pending-acks.js';
import { addClientOptions, type ClientOptions, printJson, requestOnce } from './client-options.js';

interface SendOptions extends ClientOptions {
  timeout: number;
  unreliable?: boolean;
  wait: boolean;
  lines?: boolean;
}

/** Lines of `--lines` queued per control request. */
const LINES_PER_REQUEST = 1_000;

interface SendResult {
  peer: string;
  seq: number | null;
  last_seq: number | null;
  count: number;
}

export function registerSendCommand(program: Command): void {
  addClientOptions(
    program
      .command('send')
      .description(
        'send a reliable message to a peer (id or name): queued durably on this device, delivered once and in ' +
          'order even across restarts; waits for the peer to confirm it',
      )
      .argument('<peer>', 'peer id or name')
      .argument('<text>', 'message text, or - to read the message from standard input')
      .option(
        '-t, --timeout <ms>',
        'how long to wait for the confirmation',
        parseTimeout,
        DEFAULT_ACK_TIMEOUT_MS,
      )
      .option('--no-wait', 'exit once the message is queued durably, without waiting for the peer')
      .option('-l, --lines', 'every line of standard input is one message (with - as the text), in order')
      .option('-u, --unreliable', 'one attempt now, no acknowledgement; exit 1 when no link could take it'),
  ).action(async (peer: string, text: string, options: SendOptions) => {
    if (options.unreliable === true) return sendUnreliable(peer, text, options);
    const batches =
      options.lines === true ? await lineBatches(text) : [[(await messageBytes(text)).toString('base64')]];
    let first: SendResult | undefined;
    let last: SendResult | undefined;
    let count = 0;
    for (const [index, batch] of batches.entries()) {
      // Only the last request waits: the peer confirms in order, so its confirmation covers every earlier one.
      const wait = options.wait && index === batches.length - 1;
      const result = await requestOnce(options, {
        cmd: 'send',
        peer,
        payload: batch,
        wait,
        timeout_ms: options.timeout,
      });
      first ??= result;
      last = result;
      count += result.count;
    }
    const seqs = { seq: first?.seq ?? null, last_seq: last?.last_seq ?? null, count };
    const to = last?.peer ?? peer;
    if (options.json === true) printJson({ peer: to, acknowledged: options.wait, queued: true, ...seqs });
    else if (!options.wait) process.stdout.write(`queued for ${to} (${describeSeqs(seqs)})\n`);
    else process.stdout.write(`acknowledged by ${to} (${describeSeqs(seqs)})\n`);
  });
}

async function sendUnreliable(peer: string, text: string, options: SendOptions): Promise<void> {
  const payload = (await messageBytes(text)).toString('base64');
  const result = await requestOnce(options, { cmd: 'send-unreliable', peer, payload });
  if (options.json === true) printJson(result);
  else
    process.stdout.write(
      result.sent ? `sent to ${result.peer} (unreliable)\n` : 'dropped: no link can take it now\n',
    );
  if (!result.sent) process.exitCode = 1;
}

function describeSeqs(seqs: { seq: number | null; last_seq: number | null; count: number }): string {
  if (seqs.count === 1) return `#${seqs.seq}`;
  return `${seqs.count} messages, #${seqs.seq}..#${seqs.last_seq}`;
}

/** Standard input's lines as base64 payloads, in batches; an empty last line (a final newline) is not a message. */
async function lineBatches(text: string): Promise<string[][]> {
  if (text !== '-') throw new InvalidArgumentError('--lines reads standard input: give - as the text');
  const lines = (await messageBytes('-')).toString('utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  if (lines.length === 0) throw new InvalidArgumentError('standard input has no lines');
  const batches: string[][] = [];
  for (let i = 0; i < lines.length; i += LINES_PER_REQUEST) {
    batches.push(
      lines.slice(i, i + LINES_PER_REQUEST).map((line) => Buffer.from(line, 'utf8').toString('base64')),
    );
  }
  return batches;
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
