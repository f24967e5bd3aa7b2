// `nearmesh stream <peer> <name>` pipes standard input to a named stream on the peer and exits 0 once the
// peer's agent has it all; `nearmesh stream --receive <name>` writes the bytes of the streams peers open to
// that name to standard output (each stream's bytes whole and in order; --json prints the events instead).
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { addClientOptions, type ClientOptions, connectToAgent, printJson } from './client-options.js';

interface StreamOptions extends ClientOptions {
  receive?: string;
}

/** Bytes per stream-write request: big enough to keep a Wi-Fi link busy, small enough for one control line. */
const WRITE_BYTES = 256 * 1024;

export function registerStreamCommand(program: Command): void {
  addClientOptions(
    program
      .command('stream')
      .description(
        'pipe standard input to a named stream on a peer, or (--receive) print the streams opened to a name',
      )
      .argument('[peer]', 'peer id or name to stream to')
      .argument('[name]', 'the stream name the peer listens on')
      .option('-r, --receive <name>', 'receive: write what peers stream to <name> to standard output'),
  ).action(async (peer: string | undefined, name: string | undefined, options: StreamOptions) => {
    if (options.receive !== undefined) return receive(options.receive, options);
    if (peer === undefined || name === undefined) {
      throw new InvalidArgumentError('give <peer> <name> to send, or --receive <name> to receive');
    }
    return send(peer, name, options);
  });
}

async function send(peer: string, name: string, options: StreamOptions): Promise<void> {
  const client = await connectToAgent(options);
  try {
    const { stream } = await client.request({ cmd: 'stream-open', peer, name });
    let pending = Buffer.alloc(0);
    for await (const chunk of process.stdin) {
      pending = Buffer.concat([pending, chunk as Buffer]);
      while (pending.length >= WRITE_BYTES) {
        await client.request({
          cmd: 'stream-write',
          stream,
          data: pending.subarray(0, WRITE_BYTES).toString('base64'),
        });
        pending = pending.subarray(WRITE_BYTES);
      }
    }
    if (pending.length > 0)
      await client.request({ cmd: 'stream-write', stream, data: pending.toString('base64') });
    const { bytes } = await client.request({ cmd: 'stream-end', stream });
    if (options.json === true) printJson({ peer, name, bytes });
    else process.stderr.write(`streamed ${bytes} bytes to ${peer} (${name})\n`);
  } finally {
    client.close();
  }
}

async function receive(name: string, options: StreamOptions): Promise<void> {
  const client = await connectToAgent(options);
  const closed = new Promise<Error>((resolve) => client.onClose(resolve));
  // The reader went away (`| head`): end with that, not an unhandled EPIPE; the agent then tells the sender.
  const stdoutFailed = new Promise<Error>((resolve) => process.stdout.once('error', resolve));
  await client.stream({ cmd: 'stream-receive', name }, (event) => {
    if (options.json === true) return untilWritten(`${JSON.stringify(event)}\n`);
    if (event.type === 'data') return untilWritten(Buffer.from(event.data, 'base64'));
    if (event.type === 'open') process.stderr.write(`stream from ${event.from_name} (${event.from})\n`);
    else if (event.type === 'error') process.stderr.write(`stream from a peer failed: ${event.message}\n`);
    return undefined;
  });
  throw await Promise.race([closed, stdoutFailed]);
}

/**
 * Writes to standard output; while what it holds is over its limit (a slow reader: a pipe, a terminal),
 * the promise of its 'drain', so no more is taken from the agent meanwhile and the sender slows down.
 * Standard output closing or failing (the reader went away) rejects it.
 */
function untilWritten(bytes: Buffer | string): Promise<void> | undefined {
  if (process.stdout.write(bytes)) return undefined;
  return new Promise((resolve, reject) => {
    const settle = (error?: Error): void => {
      process.stdout.off('drain', onDrain);
      process.stdout.off('error', settle);
      process.stdout.off('close', onClose);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onDrain = (): void => settle();
    const onClose = (): void => settle(new Error('standard output closed'));
    process.stdout.once('drain', onDrain);
    process.stdout.once('error', settle);
    process.stdout.once('close', onClose);
  });
}
