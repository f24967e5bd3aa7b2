// Finds the line where a key is set in TOML text, because the parser hands back plain objects without
// positions. Best effort: tables, [[arrays of tables]], dotted and quoted keys, multi-line strings.

export type KeyPath = readonly (string | number)[];

interface Entry {
  readonly path: KeyPath;
  readonly line: number;
}

const SEGMENT = String.raw`(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')`;
const KEY_PATH = String.raw`${SEGMENT}(?:\s*\.\s*${SEGMENT})*`;
const ARRAY_HEADER = new RegExp(String.raw`^\s*\[\[\s*(${KEY_PATH})\s*\]\]`);
const TABLE_HEADER = new RegExp(String.raw`^\s*\[\s*(${KEY_PATH})\s*\]`);
const ASSIGNMENT = new RegExp(String.raw`^\s*(${KEY_PATH})\s*=`);

function splitKeyPath(text: string): string[] {
  const segments: string[] = [];
  for (const match of text.matchAll(new RegExp(SEGMENT, 'g'))) {
    const segment = match[0];
    if (segment.startsWith('"')) {
      try {
        segments.push(String(JSON.parse(segment)));
      } catch {
        segments.push(segment.slice(1, -1));
      }
    } else if (segment.startsWith("'")) {
      segments.push(segment.slice(1, -1));
    } else {
      segments.push(segment);
    }
  }
  return segments;
}

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

/** Every table header and key assignment with its full path (array-of-tables entries get their index). */
export function scanEntries(text: string): Entry[] {
  const entries: Entry[] = [];
  // Next index of each array of tables, by its resolved path; the last index opened is current.
  const arrayIndex = new Map<string, number>();
  let table: KeyPath = [];
  let openString: '"""' | "'''" | undefined;

  const resolveHeader = (segments: string[], isArray: boolean): (string | number)[] => {
    const resolved: (string | number)[] = [];
    segments.forEach((segment, i) => {
      resolved.push(segment);
      const key = JSON.stringify(resolved);
      if (isArray && i === segments.length - 1) {
        const index = (arrayIndex.get(key) ?? -1) + 1;
        arrayIndex.set(key, index);
        resolved.push(index);
      } else {
        const current = arrayIndex.get(key);
        if (current !== undefined) resolved.push(current);
      }
    });
    return resolved;
  };

  text.split(/\r?\n/).forEach((content, i) => {
    const line = i + 1;
    if (openString !== undefined) {
      if (count(content, openString) % 2 === 1) openString = undefined;
      return;
    }
    const arrayHeader = ARRAY_HEADER.exec(content);
    const tableHeader = arrayHeader === null ? TABLE_HEADER.exec(content) : null;
    const header = arrayHeader ?? tableHeader;
    if (header?.[1] !== undefined) {
      table = resolveHeader(splitKeyPath(header[1]), arrayHeader !== null);
      entries.push({ path: table, line });
    } else {
      const assignment = ASSIGNMENT.exec(content);
      if (assignment?.[1] !== undefined)
        entries.push({ path: [...table, ...splitKeyPath(assignment[1])], line });
    }
    for (const delimiter of ['"""', "'''"] as const) {
      if (count(content, delimiter) % 2 === 1) openString = delimiter;
    }
  });
  return entries;
}

function isPrefix(prefix: KeyPath, path: KeyPath): boolean {
  return prefix.length <= path.length && prefix.every((segment, i) => segment === path[i]);
}

/**
 * The line that sets `path`, else the line of its closest written ancestor (the inline table or array that
 * contains it, or the [table] header for a key that is missing). Undefined when nothing on the path is written.
 */
export function findKeyLine(text: string, path: KeyPath): number | undefined {
  let best: Entry | undefined;
  for (const entry of scanEntries(text)) {
    if (entry.path.length === 0 || !isPrefix(entry.path, path)) continue;
    if (best === undefined || entry.path.length > best.path.length) best = entry;
  }
  return best?.line;
}
