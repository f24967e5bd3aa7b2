// `nearmesh console`: the agent's console (agent/console) over the control socket: a local readline
// with history and tab completion, each line run by the agent. `-e LINE` runs one line and exits.
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { ControlClient } from '../control/client.js';
import type { ConsoleCompleteResult, ConsoleLineResult } from '../control/wire.js';
import { addClientOptions, type ClientOptions, printJson, resolveSocketPath } from './client-options.js';

interface ConsoleOptions extends ClientOptions {
  execute?: string;
}

export function registerConsoleCommand(program: Command): void {
  addClientOptions(
    program
      .command('console')
      .description(
        "the agent's console: help, status, peers, routes, links, send, log level (exit with Ctrl-D)",
      )
      .option('-e, --execute <line>', 'run this one console line and exit (--json: {line, output})'),
  ).action(async (options: ConsoleOptions) => {
    const client = await ControlClient.connect(await resolveSocketPath(options));
    const run = async (line: string): Promise<string> =>
      ((await client.request({ cmd: 'console-line', line })) as ConsoleLineResult).output;
    if (options.execute !== undefined) {
      try {
        const output = await run(options.execute);
        if (options.json === true) printJson({ line: options.execute, output });
        else process.stdout.write(output);
      } finally {
        client.close();
      }
      return;
    }
    await interactive(client, run);
  });
}

async function interactive(client: ControlClient, run: (line: string) => Promise<string>): Promise<void> {
  const terminal = process.stdin.isTTY === true && process.stdout.isTTY === true;
  const rl = createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal,
    historySize: 100,
    prompt: 'nearmesh> ',
    completer: (line: string, callback: (error: Error | null, result?: [string[], string]) => void) => {
      client.request({ cmd: 'console-complete', line }).then(
        (result) => {
          const { completions, word } = result as ConsoleCompleteResult;
          callback(null, [completions, word]);
        },
        (error: Error) => callback(error),
      );
    },
  });
  let failure: Error | undefined;
  let done = false;
  client.onClose((error) => {
    if (done) return;
    failure ??= error;
    rl.close();
  });
  let queue = Promise.resolve();
  rl.on('line', (line) => {
    queue = queue.then(async () => {
      const trimmed = line.trim();
      if (trimmed === 'exit' || trimmed === 'quit') return void rl.close();
      try {
        process.stdout.write(await run(line));
      } catch (error) {
        failure ??= error as Error;
        return void rl.close();
      }
      if (terminal) rl.prompt();
    });
  });
  if (terminal) rl.prompt();
  await new Promise<void>((resolve) => rl.once('close', resolve));
  await queue;
  done = true;
  client.close();
  if (failure !== undefined) throw failure;
}
