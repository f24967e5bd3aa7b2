// Structured logging with pino: one JSON object per line under systemd (journald reads stdout),
// a readable single-line form when a person watches a terminal. Never log keys.
import { createRequire } from 'node:module';
import { type LevelWithSilent, type Logger, pino } from 'pino';
import type { PrettyOptions, PrettyStream } from 'pino-pretty';

export type { Logger };

export interface LoggerOptions {
  level: LevelWithSilent;
  /** Defaults to "readable when stdout is a terminal and we are not under systemd". */
  readable?: boolean;
}

export function isUnderSystemd(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.INVOCATION_ID !== undefined || env.JOURNAL_STREAM !== undefined;
}

/** journald reads a leading "<N>" as the line's syslog priority (sd-daemon(3)): 7 debug ... 2 critical. */
const JOURNAL_PRIORITIES = [
  ['trace', 7],
  ['debug', 7],
  ['info', 6],
  ['warn', 4],
  ['error', 3],
  ['fatal', 2],
] as const;

/** One JSON line per record on stdout, prefixed with its journald priority. */
export function journalDestination(write: (line: string) => void = (line) => process.stdout.write(line)) {
  return pino.multistream(
    JOURNAL_PRIORITIES.map(([level, priority]) => ({
      level,
      stream: { write: (line: string) => write(`<${priority}>${line}`) },
    })),
    // Each record goes only to the stream of the highest level it reaches.
    { dedupe: true },
  );
}

export function createLogger(options: LoggerOptions): Logger {
  const readable = options.readable ?? (process.stdout.isTTY === true && !isUnderSystemd());
  const base = { level: options.level, base: undefined, redact: ['meshKey', 'privateKey', '*.meshKey'] };
  // Under systemd with stdout on the journal, lines carry their priority (journalctl -p warning works).
  if (!readable && process.env.JOURNAL_STREAM !== undefined) return pino(base, journalDestination());
  if (!readable) return pino(base);
  // Loaded only for a person at a terminal: a service never pays its memory.
  const pretty = createRequire(import.meta.url)('pino-pretty') as (options: PrettyOptions) => PrettyStream;
  return pino(
    base,
    pretty({
      sync: true,
      colorize: true,
      singleLine: true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname',
    }),
  );
}

/** A logger that drops everything, for components under test. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
