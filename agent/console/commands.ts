// The console's command language: one table of commands, each with its usage, a line of help,
// completion of its arguments and a `run` that returns text. The serial console and `nearmesh console`
// (through the control socket) both run lines through here, so every command is written once.
import type { RouteInfo } from '../control/wire.js';
import type { PeerInfo } from '../links/peer-directory.js';
import { formatLinks, formatPeers, formatRoutes, formatStatus, type StatusReport } from './format.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type ConsoleLogLevel = (typeof LOG_LEVELS)[number];

/** What the console asks of the agent: the same functions the control socket's handlers use. */
export interface ConsoleContext {
  id(): { id: string; name: string };
  status(): StatusReport | Promise<StatusReport>;
  peers(): PeerInfo[];
  routes(): RouteInfo[];
  send(peer: string, payload: Uint8Array, timeoutMs: number | undefined): Promise<{ peer: string }>;
  multicast(group: string | undefined, payload: Uint8Array): { links: number };
  /** The running agent's log level; sets it first when `level` is given. */
  logLevel(level?: ConsoleLogLevel): string;
}

export interface ConsoleCommand {
  name: string;
  usage: string;
  help: string;
  /** Candidates for the word being typed, given the complete words before it (after the command name). */
  complete?(before: readonly string[], context: ConsoleContext): string[];
  run(args: readonly string[], context: ConsoleContext): Promise<string> | string;
}

/** How long `send` waits for the acknowledgement. */
const SEND_TIMEOUT_MS = 10_000;

class UsageError extends Error {}

function peerReferences(context: ConsoleContext): string[] {
  const peers = context.peers();
  return [...new Set([...peers.map((peer) => peer.name), ...peers.map((peer) => peer.id)])];
}

/** A command without arguments that prints a report. */
function report(
  name: string,
  help: string,
  produce: (context: ConsoleContext) => Promise<string> | string,
): ConsoleCommand {
  return {
    name,
    usage: name,
    help,
    run: (args, context) => {
      if (args.length > 0) throw new UsageError(`${name} takes no arguments`);
      return produce(context);
    },
  };
}

export const COMMANDS: readonly ConsoleCommand[] = [
  {
    name: 'help',
    usage: 'help [command]',
    help: 'list the commands, or describe one',
    complete: (before) => (before.length === 0 ? COMMANDS.map((command) => command.name) : []),
    run: (args) => {
      if (args.length === 0) {
        const width = Math.max(...COMMANDS.map((command) => command.usage.length));
        return `${COMMANDS.map((command) => `${command.usage.padEnd(width)}  ${command.help}`).join('\n')}\n`;
      }
      const command = findCommand(args[0] ?? '');
      if (command === undefined) throw new UsageError(`unknown command ${args[0]} (try help)`);
      return `${command.usage}\n  ${command.help}\n`;
    },
  },
  report('status', "this agent's identity, listeners, peer counts and counters", async (context) =>
    formatStatus(await context.status()),
  ),
  report('peers', 'known peers: direct links and agents reached through the mesh', (context) =>
    formatPeers(context.peers()),
  ),
  report('routes', 'the mesh route table', (context) => formatRoutes(context.routes())),
  report('links', 'the direct links: medium, address and round-trip time', (context) =>
    formatLinks(context.peers()),
  ),
  {
    name: 'send',
    usage: 'send <peer> <text...>',
    help: 'send a text message to a peer (id or name) and wait for its acknowledgement',
    complete: (before, context) => (before.length === 0 ? peerReferences(context) : []),
    run: async (args, context) => {
      const [peer, ...words] = args;
      if (peer === undefined || words.length === 0) throw new UsageError('usage: send <peer> <text...>');
      const result = await context.send(peer, Buffer.from(words.join(' '), 'utf8'), SEND_TIMEOUT_MS);
      return `acknowledged by ${result.peer}\n`;
    },
  },
  {
    name: 'broadcast',
    usage: 'broadcast [--group NAME] <text...>',
    help: 'send a text message to every agent of the mesh, or to a group (no acknowledgement)',
    complete: (before) => (before.length === 0 ? ['--group'] : []),
    run: (args, context) => {
      let words = [...args];
      let group: string | undefined;
      if (words[0] === '--group' || words[0] === '-g') {
        group = words[1];
        if (group === undefined) throw new UsageError('usage: broadcast [--group NAME] <text...>');
        words = words.slice(2);
      }
      if (words.length === 0) throw new UsageError('usage: broadcast [--group NAME] <text...>');
      const { links } = context.multicast(group, Buffer.from(words.join(' '), 'utf8'));
      return `sent on ${links} link${links === 1 ? '' : 's'}\n`;
    },
  },
  {
    name: 'log',
    usage: `log level [${LOG_LEVELS.slice(0, 5).join('|')}]`,
    help: "show or set the running agent's log level",
    complete: (before) => {
      if (before.length === 0) return ['level'];
      return before.length === 1 && before[0] === 'level' ? [...LOG_LEVELS] : [];
    },
    run: (args, context) => {
      const [sub, level, ...rest] = args;
      if (sub !== 'level' || rest.length > 0)
        throw new UsageError(`usage: log level [${LOG_LEVELS.join('|')}]`);
      if (level === undefined) return `log level ${context.logLevel()}\n`;
      const known = LOG_LEVELS.find((candidate) => candidate === level);
      if (known === undefined) throw new UsageError(`unknown log level ${level} (${LOG_LEVELS.join(', ')})`);
      return `log level ${context.logLevel(known)}\n`;
    },
  },
];

export function findCommand(name: string): ConsoleCommand | undefined {
  return COMMANDS.find((command) => command.name === name);
}

/** Splits a line into words on whitespace; double quotes group words (a backslash escapes inside them). */
export function splitArguments(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quoted = false;
  for (let index = 0; index < line.length; index++) {
    const char = line[index] as string;
    if (quoted) {
      if (char === '\\' && (line[index + 1] === '"' || line[index + 1] === '\\')) {
        word += line[++index];
      } else if (char === '"') quoted = false;
      else word += char;
    } else if (char === '"') {
      quoted = true;
      inWord = true;
    } else if (/\s/.test(char)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += char;
      inWord = true;
    }
  }
  if (quoted) throw new UsageError('unterminated quote');
  if (inWord) words.push(word);
  return words;
}

/** Runs one console line and returns what to print (errors included: this never throws). */
export async function runConsoleLine(line: string, context: ConsoleContext): Promise<string> {
  try {
    const [name, ...args] = splitArguments(line);
    if (name === undefined) return '';
    const command = findCommand(name);
    if (command === undefined) return `unknown command ${name} (try help)\n`;
    return await command.run(args, context);
  } catch (error) {
    return `error: ${error instanceof Error ? error.message : String(error)}\n`;
  }
}

/** readline's completer result for the text before the cursor: the candidates and the word they complete. */
export function completeConsoleLine(line: string, context: ConsoleContext): [string[], string] {
  try {
    const words = line.split(/\s+/);
    const current = words.pop() ?? '';
    const before = words.filter((word) => word !== '');
    let candidates: string[];
    if (before.length === 0) candidates = COMMANDS.map((command) => command.name);
    else {
      const [name, ...args] = before;
      candidates = findCommand(name ?? '')?.complete?.(args, context) ?? [];
    }
    return [candidates.filter((candidate) => candidate.startsWith(current)), current];
  } catch {
    return [[], line];
  }
}
