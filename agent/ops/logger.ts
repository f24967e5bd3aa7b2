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

export function createLogger(options: LoggerOptions): Logger {
  const readable = options.readable ?? (process.stdout.isTTY === true && !isUnderSystemd());
  const base = { level: options.level, base: undefined, redact: ['meshKey', 'privateKey', '*.meshKey'] };
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
