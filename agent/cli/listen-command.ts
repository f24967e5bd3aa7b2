// `nearmesh listen`: what waits in the app inbox (oldest first), then messages as they arrive, until
// interrupted (or the agent stops). Each reliable message is taken from the inbox once it is written to
// standard output, so a listen killed half way hands the rest to the next one.
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import type { ControlClient } from '../control/client.js';
import type { ListenEvent } from '../control/wire.js';
import { DurationError, parseDuration } from '../core/duration.js';
import { addClientOptions, type ClientOptions, connectToAgent } from './client-options.js';

interface ListenOptions extends ClientOptions {
  consumer?: string;
  peek?: boolean;
  from?: string;
  since?: number;
}

export function registerListenCommand(program: Command): void {
  addClientOptions(
    program
      .command('listen')
      .description(
        'print messages for this agent: first those waiting in the inbox, then new ones as they arrive; ' +
          'each reliable message leaves the inbox once printed (for this consumer)',
      )
      .option(
        '--consumer <name>',
        'the consumer taking the messages (default: listen); each consumer gets every message once',
      )
      .option('--peek', 'print waiting and new messages without taking them from the inbox')
      .option('--from <peer>', 'only messages from this peer, id or name (implies --peek)')
      .option(
        '--since <time>',
        'only messages received since a time: a duration ago ("10m") or an ISO date (implies --peek)',
        parseSince,
      ),
  ).action(async (options: ListenOptions) => {
    const client = await connectToAgent(options);
    const closed = new Promise<Error>((resolve) => client.onClose(resolve));
    const takes = options.peek !== true && options.from === undefined && options.since === undefined;
    const output = new ListenOutput(client, options.json === true, takes);
    await client.stream(
      {
        cmd: 'listen',
        ...(options.consumer !== undefined && { consumer: options.consumer }),
        ...(options.peek === true && { peek: true }),
        ...(options.from !== undefined && { from: options.from }),
        ...(options.since !== undefined && { since_ms: options.since }),
      },
      (message) => output.add(message),
    );
    throw await closed;
  });
}

/** Best-effort messages held while standard output is slow; past it they are dropped, said on stderr. */
const MAX_HELD = 10_000;

/**
 * Writes messages in order and tells the agent each reliable one was taken, waiting for its answer before
 * the next is written: killed at any point, at most the message just written comes again to the next
 * listen. The agent sends a window of reliable messages ahead, so what waits here stays small.
 */
class ListenOutput {
  readonly #held: ListenEvent[] = [];
  #writing = false;
  #dropped = 0;

  constructor(
    private readonly client: ControlClient,
    private readonly json: boolean,
    private readonly takes: boolean,
  ) {}

  add(message: ListenEvent): void {
    if (message.inbox_id === undefined && this.#held.length >= MAX_HELD) {
      this.#dropped++;
      return;
    }
    this.#held.push(message);
    if (!this.#writing) void this.#writeHeld();
  }

  async #writeHeld(): Promise<void> {
    this.#writing = true;
    try {
      for (let message = this.#held.shift(); message !== undefined; message = this.#held.shift()) {
        if (this.#dropped > 0) {
          process.stderr.write(`nearmesh: output too slow: ${this.#dropped} best-effort messages dropped\n`);
          this.#dropped = 0;
        }
        await write(this.json ? `${JSON.stringify(message)}\n` : `${formatMessage(message)}\n`);
        if (message.inbox_id !== undefined && this.takes)
          await this.client.request({ cmd: 'inbox-take', up_to: message.inbox_id });
      }
    } catch {
      // The connection closed (the command ends with its error) or standard output is gone.
      this.client.close();
    } finally {
      this.#writing = false;
    }
  }
}

/** Resolves once standard output has taken the text (a full pipe holds the messages back at the agent). */
function write(text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(text, (error) =>
      error === null || error === undefined ? resolve() : reject(error),
    );
  });
}

export function formatMessage(message: ListenEvent): string {
  return `${message.received_at} ${message.from_name} (${message.from})${describeTarget(message)}: ${message.payload}`;
}

/** " to hall" for a group message, " to everyone" for a broadcast, nothing for a message to us alone. */
function describeTarget(message: ListenEvent): string {
  if (message.to === undefined) return '';
  return message.to === '*' ? ' to everyone' : ` to ${message.to}`;
}

/** `--since`: a duration ago ("10m", "2h") or a date Date.parse reads (ISO 8601); ms since the epoch. */
export function parseSince(text: string, now = Date.now()): number {
  try {
    return now - parseDuration(text);
  } catch (error) {
    if (!(error instanceof DurationError)) throw error;
  }
  const at = Date.parse(text);
  if (Number.isNaN(at))
    throw new InvalidArgumentError(`expected a duration ago ("10m") or an ISO date ("2026-12-07T10:00:00Z")`);
  return at;
}
