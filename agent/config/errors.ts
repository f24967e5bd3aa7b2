// Config problems as typed errors whose one-line message names the file, line and key, so an operator
// can fix /etc/nearmesh/nearmesh.toml from a single journal line.
import { NearmeshError } from '../core/errors.js';

/** One problem found in a config document. */
export interface ConfigIssue {
  /** Dotted path of the offending key ("wifi.listen", "peers[1].address"); absent for TOML syntax errors. */
  readonly key?: string;
  /** 1-based line in the config file, when it could be found. */
  readonly line?: number;
  /** 1-based column; only TOML syntax errors know it. */
  readonly column?: number;
  /** The problem without its location, already naming the key: `wifi.listen: expected "host:port", got "0.0.0.0"`. */
  readonly text: string;
}

/** Formats one issue as a self-contained line: `config error in FILE line N: TEXT`. */
export function formatConfigIssue(file: string | undefined, issue: ConfigIssue): string {
  const where = [
    file === undefined ? undefined : `in ${file}`,
    issue.line === undefined ? undefined : `line ${issue.line}`,
  ]
    .filter((part) => part !== undefined)
    .join(' ');
  return `config error${where === '' ? '' : ` ${where}`}: ${issue.text}`;
}

/**
 * The config cannot be used. `message` is the first problem in document order (one line, as the CLI prints
 * it); `issues` holds every problem found, for callers that want to list them all (see `lines()`).
 */
export class ConfigError extends NearmeshError {
  readonly key: string | undefined;
  readonly file: string | undefined;
  readonly line: number | undefined;
  readonly issues: readonly ConfigIssue[];

  constructor(
    file: string | undefined,
    issues: readonly [ConfigIssue, ...ConfigIssue[]],
    options?: { cause?: unknown },
  ) {
    super('config', formatConfigIssue(file, issues[0]), options);
    this.file = file;
    this.key = issues[0].key;
    this.line = issues[0].line;
    this.issues = issues;
  }

  /** Every problem, one formatted line each, first one equal to `message`. */
  lines(): string[] {
    return this.issues.map((issue) => formatConfigIssue(this.file, issue));
  }
}

/** A mesh key that is not base64url of exactly 32 bytes. The message never echoes the key: it is a secret. */
export class MeshKeyError extends NearmeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('mesh-key', message, options);
  }
}
