// Turns zod's validation issues into ConfigIssues that read like an operator's sentence: the dotted key,
// what was expected, what was found (never a secret), the line, and a "did you mean" for typos.
import type { z } from 'zod/v3';
import type { ConfigIssue } from './errors.js';
import { findKeyLine, type KeyPath } from './locate.js';
import { KNOWN_KEYS } from './schema.js';

/**
 * Keys whose values must not appear in messages (they end up in journals and bug reports). The console
 * password is a hash, but a mistaken plain password may be what is there.
 */
const SECRET_KEYS = new Set(['mesh_key', 'console.password']);

/** "wifi.listen", "peers[1].address", `wifi."odd key"`. */
export function formatKeyPath(path: KeyPath): string {
  return path
    .map((segment, i) => {
      if (typeof segment === 'number') return `[${segment}]`;
      const text = /^[A-Za-z0-9_-]+$/.test(segment) ? segment : JSON.stringify(segment);
      return i === 0 ? text : `.${text}`;
    })
    .join('');
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

function valueAt(root: unknown, path: KeyPath): unknown {
  let value = root;
  for (const segment of path) {
    if (typeof segment === 'number' && Array.isArray(value)) value = value[segment];
    else if (typeof segment === 'string' && isTable(value) && Object.hasOwn(value, segment))
      value = value[segment];
    else return undefined;
  }
  return value;
}

function typeName(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `a ${value.length}-character string`;
  if (isTable(value) && typeof value.toISOString !== 'function') return 'a table';
  if (typeof value === 'object' && value !== null) return 'a date';
  return `a ${typeof value}`;
}

/** The found value in TOML-ish spelling, short enough for one line. */
function describeValue(value: unknown, secret: boolean): string {
  if (value === undefined) return 'nothing';
  if (secret) return typeName(value);
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  if (Array.isArray(value)) {
    let text: string | undefined;
    try {
      text = JSON.stringify(value)?.replaceAll(',', ', ');
    } catch {
      text = undefined;
    }
    return text !== undefined && text.length <= 40 ? text : 'an array';
  }
  // TomlDate and friends print as TOML; plain tables would be noise.
  if (isTable(value) && typeof value.toISOString !== 'function') return 'a table';
  return String(value);
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

function closest(key: string, candidates: readonly string[]): string | undefined {
  const normal = (text: string) => text.toLowerCase().replaceAll('-', '_');
  const limit = key.length >= 5 ? 2 : 1;
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(normal(key), normal(candidate));
    if (distance <= limit && (best === undefined || distance < best.distance)) best = { candidate, distance };
  }
  return best?.candidate;
}

function unknownKeyHint(table: KeyPath, key: string): string {
  const section = table.filter((segment) => typeof segment === 'string').join('.');
  const typo = closest(key, KNOWN_KEYS[section] ?? []);
  if (typo !== undefined) return ` (did you mean "${formatKeyPath([...table, typo])}"?)`;
  if (section === '') {
    // A table's key written at the top level: point at the table(s) it belongs in.
    const homes = Object.entries(KNOWN_KEYS)
      .filter(([name, keys]) => name !== '' && keys.includes(key))
      .map(([name]) => `"${name}.${key}"`);
    if (homes.length > 0) return ` (did you mean ${homes.join(' or ')}, under its [table]?)`;
  } else if (KNOWN_KEYS['']?.includes(key)) {
    // The classic TOML trap: a top-level key written after a [table] header belongs to that table.
    return ' (top-level keys must come before the first [table])';
  }
  return '';
}

/**
 * One ConfigIssue per problem (one per unknown key), in document order. `raw` is the parsed TOML (for the
 * found values); `text` is the TOML source (for line numbers), absent when there was no file.
 */
export function configIssuesFromZod(
  issues: readonly z.ZodIssue[],
  raw: unknown,
  text: string | undefined,
): ConfigIssue[] {
  const located: { issue: ConfigIssue; table: string; missing: boolean }[] = [];
  const add = (path: KeyPath, message: string, missing: boolean) => {
    const line = text === undefined ? undefined : findKeyLine(text, path);
    const issue = { key: formatKeyPath(path), ...(line === undefined ? {} : { line }), text: message };
    located.push({ issue, table: formatKeyPath(path.slice(0, -1)), missing });
  };
  for (const issue of issues) {
    const path: KeyPath = issue.path;
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const keyPath = [...path, key];
        add(keyPath, `unknown key "${formatKeyPath(keyPath)}"${unknownKeyHint(path, key)}`, false);
      }
      continue;
    }
    const value = valueAt(raw, path);
    const key = formatKeyPath(path);
    const secret = SECRET_KEYS.has(key);
    add(
      path,
      `${key === '' ? '' : `${key}: `}${issue.message}, got ${describeValue(value, secret)}`,
      value === undefined,
    );
  }
  // Document order, so the first line an operator reads is the first problem in the file. A missing key
  // only has its table's header line; it sorts after the table's other problems, because a misspelt key
  // ("adress") is usually why the real one is missing, and the typo is the message worth reading first.
  const sortLine = (entry: (typeof located)[number]): number => {
    const line = entry.issue.line ?? Infinity;
    if (!entry.missing) return line;
    const siblings = located
      .filter((other) => other.table === entry.table && !other.missing)
      .map((other) => other.issue.line ?? 0);
    return Math.max(line, ...siblings) + 0.5;
  };
  return located
    .map((entry, order) => ({ issue: entry.issue, line: sortLine(entry), order }))
    .sort((a, b) => a.line - b.line || a.order - b.order)
    .map(({ issue }) => issue);
}
