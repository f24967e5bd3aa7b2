// `nearmesh call <target> <action> [json-args]`: runs an action on a peer, a group or every agent and
// prints one result per target. Exits 0 only when every target answered ok.
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { formatCallResults } from '../console/format.js';
import { parseDuration } from '../core/duration.js';
import { addClientOptions, type ClientOptions, printJson, requestOnce } from './client-options.js';

interface CallOptions extends ClientOptions {
  timeout: number;
  in?: number;
  at?: number;
  key?: string;
}

export function registerCallCommand(program: Command): void {
  addClientOptions(
    program
      .command('call')
      .description('run an action on a peer, on group:NAME or on all, and print each result')
      .argument('<target>', 'peer id or name, group:NAME, or all')
      .argument('<action>', 'action name, e.g. light.set')
      .argument('[args]', 'arguments as a JSON object', parseArgs, {})
      .option('-t, --timeout <duration>', 'how long each target may take', duration, 10_000)
      .option('--in <duration>', 'fire on every target this long from now, at the same instant', duration)
      .option('--at <time>', 'fire on every target at this ISO time, at the same instant', isoTime)
      .option('--key <key>', 'idempotency key: retrying with the same key runs the action once'),
  ).action(async (target: string, action: string, args: Record<string, unknown>, options: CallOptions) => {
    if (options.in !== undefined && options.at !== undefined)
      throw new InvalidArgumentError('give --in or --at, not both');
    const rows = await requestOnce(options, {
      cmd: 'call',
      target,
      action,
      args,
      timeout_ms: options.timeout,
      ...(options.in !== undefined && { in_ms: options.in }),
      ...(options.at !== undefined && { at_ms: options.at }),
      ...(options.key !== undefined && { key: options.key }),
    });
    if (options.json === true) printJson(rows);
    else process.stdout.write(formatCallResults(rows, target));
    if (rows.length === 0 || rows.some((row) => row.status !== 'ok')) process.exitCode = 1;
  });
}

function parseArgs(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new InvalidArgumentError('expected a JSON object, e.g. \'{"on": true}\'');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidArgumentError('expected a JSON object, e.g. \'{"on": true}\'');
  }
  return value as Record<string, unknown>;
}

function duration(text: string): number {
  try {
    return parseDuration(text);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function isoTime(text: string): number {
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new InvalidArgumentError('expected an ISO time like 2026-11-25T18:00:00Z');
  return ms;
}
