// `nearmesh watch <peer> <sensor>`: a sensor's readings at a rate, until interrupted.
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { parseDuration } from '../core/duration.js';
import { addClientOptions, type ClientOptions, connectToAgent, printJson } from './client-options.js';

interface WatchOptions extends ClientOptions {
  every: number;
}

export function registerWatchCommand(program: Command): void {
  addClientOptions(
    program
      .command('watch')
      .description("print a sensor's readings as they come, at a rate")
      .argument('<peer>', 'peer id or name')
      .argument('<sensor>', 'sensor name, e.g. cpu.temp')
      .option('--every <duration>', 'how often the peer reads and sends it', every, 5_000),
  ).action(async (peer: string, sensor: string, options: WatchOptions) => {
    const client = await connectToAgent(options);
    const closed = new Promise<Error>((resolve) => client.onClose(resolve));
    await client.stream({ cmd: 'watch', peer, sensor, interval_ms: options.every }, (reading) => {
      if (options.json === true) printJson(reading);
      else
        process.stdout.write(
          `${reading.read_at} ${reading.name} ${reading.sensor} ${String(reading.value)}${reading.unit === null ? '' : ` ${reading.unit}`}\n`,
        );
    });
    throw await closed;
  });
}

function every(text: string): number {
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
  if (ms < 100) throw new InvalidArgumentError('expected at least 100ms');
  return ms;
}
