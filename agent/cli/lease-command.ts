// `nearmesh lease <peer> <action>`: exclusive use of a peer's action. By default it is held (and renewed
// by the agent) while this command runs, and given back when it ends; --for holds it that long and
// returns at once; --release gives it back.
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import type { LeaseResult } from '../coordination/coordinator.js';
import { parseDuration } from '../core/duration.js';
import {
  addClientOptions,
  type ClientOptions,
  connectToAgent,
  printJson,
  requestOnce,
} from './client-options.js';

interface LeaseOptions extends ClientOptions {
  ttl: number;
  for?: number;
  release?: boolean;
}

export function registerLeaseCommand(program: Command): void {
  addClientOptions(
    program
      .command('lease')
      .description('take exclusive use of a peer\'s action: others\' calls get "busy" while it is held')
      .argument('<peer>', 'peer id or name')
      .argument('<action>', 'the action (resource) to hold')
      .option('--ttl <duration>', 'how long the lease outlives a holder that vanished', duration, 10_000)
      .option('--for <duration>', 'hold it this long (the agent renews it) and return at once', duration)
      .option('--release', 'give the lease back'),
  ).action(async (peer: string, resource: string, options: LeaseOptions) => {
    if (options.release === true || options.for !== undefined) {
      const op = options.release === true ? 'release' : 'acquire';
      const result = await requestOnce(options, {
        cmd: 'lease',
        peer,
        resource,
        op,
        ttl_ms: options.ttl,
        ...(options.for !== undefined && { for_ms: options.for }),
      });
      report(result, options, op === 'release' ? 'released' : `held for ${options.for} ms`);
      return;
    }
    const client = await connectToAgent(options);
    const closed = new Promise<Error>((resolve) => client.onClose(resolve));
    const result = await client.request({
      cmd: 'lease',
      peer,
      resource,
      op: 'hold',
      ttl_ms: options.ttl,
    });
    report(result, options, 'held until this command ends (Ctrl-C releases)');
    if (!result.granted) {
      client.close();
      return;
    }
    // Closing the connection is what releases it: the agent stops renewing and gives it back.
    const release = (): void => client.close();
    process.once('SIGINT', release);
    process.once('SIGTERM', release);
    await closed;
  });
}

function report(result: LeaseResult, options: ClientOptions, what: string): void {
  if (options.json === true) printJson(result);
  else if (result.granted) process.stdout.write(`${result.resource} on ${result.name}: ${what}\n`);
  else
    process.stdout.write(
      `${result.resource} on ${result.name}: busy, held by ${result.holder_name ?? result.holder}\n`,
    );
  if (!result.granted) process.exitCode = 1;
}

function duration(text: string): number {
  try {
    return parseDuration(text);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}
