// `nearmesh console`: the agent's console (agent/console) over the control socket: a local readline
// with history and tab completion, each line run by the agent. `-e LINE` runs one line and exits.
// What a line prints while it runs (a trace) streams in as it comes; Ctrl-C or Enter stops it.
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { ControlClient } from '../control/client.js';
import { addClientOptions, type ClientOptions, printJson, resolveSocketPath } from './client-options.js';

interface ConsoleOptions extends ClientOptions {
  execute?: string;
}

export function registerConsoleCommand(program: Command): void {
  addClientOptions(
    program
      .command('console')
      .description(
        "the agent's console: help, status, peers, routes, links, send, call, trace, log level (exit with Ctrl-D)",
      )
      .option('-e, --execute <line>', 'run this one console line and exit (--json: {line, output})'),
  ).action(async (options: ConsoleOptions) => {
    const client = await ControlClient.connect(await resolveSocketPath(options));
    const run = async (line: string, write: (text: string) => void): Promise<string> => {
      const result = await client.requestWithEvents({ cmd: 'console-line', line }, (event) =>
        write(event.output),
      );
      return result.output;
    };
    if (options.execute !== undefined) {
      try {
        if (options.json === true) {
          let streamed = '';
          const output = await run(options.execute, (text) => {
            streamed += text;
          });
          printJson({ line: options.execute, output: streamed + output });
        } else process.stdout.write(await run(options.execute, (text) => process.stdout.write(text)));
      } finally {
        client.close();
      }
      return;
    }
    await interactive(client, run);
  });
}

async function interactive(
  client: ControlClient,
  run: (line: string, write: (text: string) => void) => Promise<string>,
): Promise<void> {
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
          const { completions, word } = result;
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
  let busy = 0;
  const cancel = (): void => void client.request({ cmd: 'console-cancel' }).catch(() => {});
  // Ctrl-C stops the running line (a trace); at the prompt it ends the console, as before.
  rl.on('SIGINT', () => (busy > 0 ? cancel() : rl.close()));
  rl.on('line', (line) => {
    // Enter at a terminal stops a running trace too; piped lines wait their turn.
    if (busy > 0 && terminal) cancel();
    busy++;
    queue = queue.then(async () => {
      const trimmed = line.trim();
      if (trimmed === 'exit' || trimmed === 'quit') return void rl.close();
      try {
        process.stdout.write(await run(line, (text) => process.stdout.write(text)));
      } catch (error) {
        failure ??= error as Error;
        return void rl.close();
      }
      if (terminal) rl.prompt();
    });
    queue = queue.finally(() => {
      busy--;
    });
  });
  if (terminal) rl.prompt();
  await new Promise<void>((resolve) => rl.once('close', resolve));
  await queue;
  done = true;
  client.close();
  if (failure !== undefined) throw failure;
}
