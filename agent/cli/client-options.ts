// What every client command shares: --json, --config, --socket, finding the control socket, and
// running a request against the agent with one-line errors.
import type { Command } from 'commander';
import { ControlClient, type RequestBody } from '../control/client.js';
import type { ControlCommand, ControlResults } from '../control/wire.js';

export interface ClientOptions {
  json?: boolean;
  config?: string;
  socket?: string;
}

export function addClientOptions(command: Command): Command {
  return command
    .option('--json', 'print JSON (one document, or one object per line for streams)')
    .option('-c, --config <file>', 'config file of the agent to talk to (default: $NEARMESH_CONFIG)')
    .option(
      '-s, --socket <path>',
      'control socket of the agent (default: $NEARMESH_SOCKET, else from the config)',
    );
}

/** --socket, else $NEARMESH_SOCKET, else the socket the config (or the embedded defaults) names. */
export async function resolveSocketPath(
  options: ClientOptions,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  if (options.socket !== undefined) return options.socket;
  if (env.NEARMESH_SOCKET !== undefined && env.NEARMESH_SOCKET !== '' && options.config === undefined) {
    return env.NEARMESH_SOCKET;
  }
  // Loaded only here: the config loader (TOML, the schema) is most of a client command's start-up.
  const { loadConfig } = await import('../config/index.js');
  const config = await loadConfig(options.config === undefined ? { env } : { path: options.config, env });
  return config.control.socketPath;
}

export async function connectToAgent(options: ClientOptions): Promise<ControlClient> {
  return ControlClient.connect(await resolveSocketPath(options));
}

/** Runs one request and closes the connection. */
export async function requestOnce<C extends ControlCommand>(
  options: ClientOptions,
  body: RequestBody<C> & { cmd: C },
): Promise<ControlResults[C]> {
  const client = await connectToAgent(options);
  try {
    return await client.request<C>(body);
  } finally {
    client.close();
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** What a command without arguments asks the agent for: one table, or its JSON with --json. */
type ReportCommand = {
  [C in ControlCommand]: [Exclude<keyof RequestBody<C>, 'cmd'>] extends [never] ? C : never;
}[ControlCommand];

/** Registers `nearmesh <cmd>`: asks the agent once and prints the answer as a table (or JSON with --json). */
export function registerReportCommand<C extends ReportCommand>(
  program: Command,
  cmd: C,
  description: string,
  format: (result: ControlResults[C]) => string,
): void {
  addClientOptions(program.command(cmd).description(description)).action(async (options: ClientOptions) => {
    const result = await requestOnce<C>(options, { cmd } as RequestBody<C> & { cmd: C });
    if (options.json === true) return printJson(result);
    process.stdout.write(format(result));
  });
}
