// The console's command language: one table of commands, each with its usage, a line of help,
// completion of its arguments and a `run` that returns text. The serial console and `nearmesh console`
// (through the control socket) both run lines through here, so every command is written once.
import { type ActionInfo, type AgentApi, type CallRequest, LOG_LEVELS } from '../api.js';
import { callRequestOf, requestSchema } from '../control/wire.js';
import { parseDuration } from '../core/duration.js';
import { DEFAULT_ACK_TIMEOUT_MS } from '../core/pending-acks.js';
import {
  formatCallResults,
  formatLinks,
  formatPeers,
  formatResolvers,
  formatRoutes,
  formatStatus,
  formatTraceLine,
} from './format.js';

/** What the console asks of the agent: part of the agent's typed API, the same one every front end uses. */
export type ConsoleContext = Pick<
  AgentApi,
  | 'id'
  | 'status'
  | 'peers'
  | 'resolvers'
  | 'routes'
  | 'send'
  | 'multicast'
  | 'logLevel'
  | 'call'
  | 'actions'
  | 'groups'
  | 'trace'
>;

/** Where a running command writes as it goes (a trace's lines), and what tells it to stop (Ctrl-C). */
export interface ConsoleIo {
  write(text: string): void;
  signal: AbortSignal;
  /** Who is typing. None: the control socket, whose owner (its 0600 mode) is trusted with every command. */
  access?: ConsoleAccess;
}

/** A serial session's say over commands that act (send, call, log level X ...). */
export interface ConsoleAccess {
  /** Why a command that acts may not run now, or undefined when it may. */
  refusal(): string | undefined;
  /** Asks for the password and returns what to print. */
  login(signal: AbortSignal): Promise<string>;
  logout(): string;
}

export interface ConsoleCommand {
  name: string;
  usage: string;
  help: string;
  /** Candidates for the word being typed, given the complete words before it (after the command name). */
  complete?(before: readonly string[], context: ConsoleContext): string[];
  /** Whether these arguments change something: then a serial session must be logged in. */
  acts(args: readonly string[]): boolean;
  /** Returns what is left to print once it is done; a long-running command writes on `io` meanwhile. */
  run(args: readonly string[], context: ConsoleContext, io: ConsoleIo): Promise<string> | string;
}

/** How long `call` waits for each target unless --timeout says otherwise (the CLI's default too). */
const CALL_TIMEOUT_MS = 10_000;
const TRACE_DEFAULT_SECONDS = 10;
const TRACE_MAX_SECONDS = 300;
const CALL_USAGE =
  'usage: call <peer|group:NAME|all> <action> [json-args] [--in DURATION] [--timeout DURATION]';

class UsageError extends Error {}

function peerReferences(context: ConsoleContext, linkedOnly = false): string[] {
  const peers = context.peers().filter((peer) => !linkedOnly || peer.state === 'connected');
  return [...new Set([...peers.map((peer) => peer.name), ...peers.map((peer) => peer.id)])];
}

/** What `call` may address: peers (and this agent), group:NAME and all. */
function callTargets(context: ConsoleContext): string[] {
  const groups = context.groups().map((group) => `group:${group.name}`);
  return [...new Set([...peerReferences(context), context.id().name, ...groups, 'all'])];
}

/** The action names the agents a call target stands for offer. */
function actionsOf(target: string, context: ConsoleContext): string[] {
  let offers: (row: ActionInfo) => boolean;
  if (target === 'all') offers = () => true;
  else if (target.startsWith('group:')) {
    const name = target.slice('group:'.length);
    const members = new Set(context.groups().find((group) => group.name === name)?.members ?? []);
    offers = (row) => members.has(row.peer);
  } else offers = (row) => row.peer === target || row.name === target;
  return [
    ...new Set(
      context
        .actions()
        .filter(offers)
        .map((row) => row.action),
    ),
  ].sort();
}

/** Parses `call`'s words into the control socket's call request, validated by the same schema. */
function parseCall(args: readonly string[]): CallRequest {
  const positional: string[] = [];
  let timeoutMs = CALL_TIMEOUT_MS;
  let inMs: number | undefined;
  for (let index = 0; index < args.length; index++) {
    const arg = args[index] as string;
    if (arg === '--in' || arg === '--timeout' || arg === '-t') {
      const value = args[++index];
      if (value === undefined) throw new UsageError(`${arg} needs a duration, e.g. 500ms or 5s`);
      const ms = parseDuration(value);
      if (arg === '--in') inMs = ms;
      else timeoutMs = ms;
    } else positional.push(arg);
  }
  const [target, action, json, ...rest] = positional;
  if (target === undefined || action === undefined || rest.length > 0) throw new UsageError(CALL_USAGE);
  let callArgs: unknown = {};
  if (json !== undefined) {
    try {
      callArgs = JSON.parse(json);
    } catch {
      callArgs = undefined;
    }
    if (callArgs === null || typeof callArgs !== 'object' || Array.isArray(callArgs))
      throw new UsageError('arguments must be a JSON object, e.g. {"on": true}');
  }
  const parsed = requestSchema.safeParse({
    id: 0,
    cmd: 'call',
    target,
    action,
    args: callArgs,
    timeout_ms: timeoutMs,
    ...(inMs !== undefined && { in_ms: inMs }),
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = { timeout_ms: '--timeout', in_ms: '--in' }[String(issue?.path[0])] ?? issue?.path.join('.');
    throw new UsageError(`${field}: ${issue?.message ?? 'invalid call'}`);
  }
  if (parsed.data.cmd !== 'call') throw new UsageError(CALL_USAGE);
  return callRequestOf(parsed.data);
}

/** Resolves after `ms`, or as soon as `signal` aborts. */
function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
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
    acts: () => false,
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
    acts: () => false,
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
  report(
    'resolvers',
    'where candidates come from: each resolver, its state, what it found and dialled',
    (context) => formatResolvers(context.resolvers()),
  ),
  report('links', 'the direct links: medium, address and round-trip time', (context) =>
    formatLinks(context.peers()),
  ),
  {
    name: 'send',
    usage: 'send <peer> <text...>',
    help: 'send a text message to a peer (id or name) and wait for its acknowledgement',
    complete: (before, context) => (before.length === 0 ? peerReferences(context) : []),
    acts: () => true,
    run: async (args, context) => {
      const [peer, ...words] = args;
      if (peer === undefined || words.length === 0) throw new UsageError('usage: send <peer> <text...>');
      const result = await context.send(peer, [Buffer.from(words.join(' '), 'utf8')], {
        wait: true,
        timeoutMs: DEFAULT_ACK_TIMEOUT_MS,
      });
      return `acknowledged by ${result.peer}\n`;
    },
  },
  {
    name: 'broadcast',
    usage: 'broadcast [--group NAME] <text...>',
    help: 'send a text message to every agent of the mesh, or to a group (no acknowledgement)',
    complete: (before) => (before.length === 0 ? ['--group'] : []),
    acts: () => true,
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
    name: 'call',
    usage: 'call <target> <action> [json]',
    help: 'run an action on a peer, group:NAME or all (--in D fires later, --timeout D) and print each result',
    complete: (before, context) => {
      if (before.length === 0) return callTargets(context);
      if (before.length === 1) return actionsOf(before[0] as string, context);
      const last = before[before.length - 1];
      return last === '--in' || last === '--timeout' ? [] : ['--in', '--timeout'];
    },
    acts: () => true,
    run: async (args, context) => {
      const request = parseCall(args);
      return formatCallResults(await context.call(request), request.target);
    },
  },
  {
    name: 'trace',
    usage: 'trace <peer> [seconds]',
    help: `live frames to and from a directly linked peer, for ${TRACE_DEFAULT_SECONDS} s (up to ${TRACE_MAX_SECONDS}) or until Ctrl-C or Enter`,
    complete: (before, context) => (before.length === 0 ? peerReferences(context, true) : []),
    acts: () => false,
    run: async (args, context, io) => {
      const [peer, secondsText, ...rest] = args;
      if (peer === undefined || rest.length > 0) throw new UsageError('usage: trace <peer> [seconds]');
      let seconds = TRACE_DEFAULT_SECONDS;
      if (secondsText !== undefined) {
        seconds = /^\d+$/.test(secondsText) ? Number(secondsText) : Number.NaN;
        if (!(seconds >= 1 && seconds <= TRACE_MAX_SECONDS))
          throw new UsageError(`seconds must be a whole number from 1 to ${TRACE_MAX_SECONDS}`);
      }
      let shown = 0;
      const trace = context.trace(peer, (event) => {
        shown++;
        io.write(formatTraceLine(event));
      });
      try {
        io.write(`tracing ${trace.name} (${trace.peer}) for ${seconds} s; Ctrl-C or Enter stops\n`);
        await sleepUnlessAborted(seconds * 1000, io.signal);
      } finally {
        trace.stop();
      }
      return `${shown} frame${shown === 1 ? '' : 's'} shown\n`;
    },
  },
  {
    name: 'log',
    usage: `log level [${LOG_LEVELS.slice(0, 5).join('|')}]`,
    help: "show or set the running agent's log level",
    acts: (args) => args.length > 1,
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
  {
    name: 'login',
    usage: 'login',
    help: 'log in to run commands that act (send, broadcast, call, log level X) on the serial console',
    acts: () => false,
    run: (args, _context, io) => {
      if (args.length > 0) throw new UsageError('login takes no arguments: it asks for the password');
      return io.access?.login(io.signal) ?? "no login needed here: the control socket's owner is trusted\n";
    },
  },
  {
    name: 'logout',
    usage: 'logout',
    help: 'log out: commands that act need login again',
    acts: () => false,
    run: (args, _context, io) => {
      if (args.length > 0) throw new UsageError('logout takes no arguments');
      return io.access?.logout() ?? "no login needed here: the control socket's owner is trusted\n";
    },
  },
];

export function findCommand(name: string): ConsoleCommand | undefined {
  return COMMANDS.find((command) => command.name === name);
}

/**
 * Splits a line into words on whitespace; double quotes group words (a backslash escapes inside them).
 * A word that starts with { or [ is JSON: it runs, spaces and quotes included, to its matching bracket.
 */
export function splitArguments(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quoted = false;
  for (let index = 0; index < line.length; index++) {
    const char = line[index] as string;
    if (!inWord && (char === '{' || char === '[')) {
      const end = jsonEnd(line, index);
      words.push(line.slice(index, end));
      index = end - 1;
      continue;
    }
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

/** Where the JSON value starting at `start` ends: after its matching bracket, or at the end of the line. */
function jsonEnd(line: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let index = start; index < line.length; index++) {
    const char = line[index];
    if (inString) {
      if (char === '\\') index++;
      else if (char === '"') inString = false;
    } else if (char === '"') inString = true;
    else if (char === '{' || char === '[') depth++;
    else if ((char === '}' || char === ']') && --depth === 0) return index + 1;
  }
  return line.length;
}

/**
 * Runs one console line and returns what is left to print (errors included: this never throws). With
 * `io`, a long-running command (trace) writes its lines there as they come and stops when it aborts;
 * without, they are part of the returned text.
 */
export async function runConsoleLine(line: string, context: ConsoleContext, io?: ConsoleIo): Promise<string> {
  let written = '';
  const commandIo: ConsoleIo = io ?? {
    write: (text) => {
      written += text;
    },
    signal: new AbortController().signal,
  };
  try {
    const [name, ...args] = splitArguments(line);
    if (name === undefined) return '';
    const command = findCommand(name);
    if (command === undefined) return `unknown command ${name} (try help)\n`;
    const refusal = command.acts(args) ? io?.access?.refusal() : undefined;
    if (refusal !== undefined) return `nearmesh: ${refusal}\n`;
    const rest = await command.run(args, context, commandIo);
    return written + rest;
  } catch (error) {
    return `${written}nearmesh: ${error instanceof Error ? error.message : String(error)}\n`;
  }
}

/** Completion of the text before the cursor: the candidates and the word they complete. */
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
