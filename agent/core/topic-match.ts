// MQTT topic names and topic filters (MQTT 3.1.1 §4.7, MQTT 5.0 §4.7): validation and matching.
// Pure functions, no state; the broker and the retained store both use them.

const MAX_TOPIC_BYTES = 65_535;

/** A topic name a PUBLISH may carry: non-empty, no wildcards, no NUL, at most 65535 UTF-8 bytes. */
export function isValidTopicName(topic: string): boolean {
  if (topic.length === 0 || Buffer.byteLength(topic, 'utf8') > MAX_TOPIC_BYTES) return false;
  return !/[+#]/.test(topic) && !topic.includes('\u0000') && isWellFormed(topic);
}

/**
 * A topic filter a SUBSCRIBE / UNSUBSCRIBE may carry: non-empty, no NUL, `+` only as a whole level,
 * `#` only as the whole last level.
 */
export function isValidTopicFilter(filter: string): boolean {
  if (filter.length === 0 || Buffer.byteLength(filter, 'utf8') > MAX_TOPIC_BYTES) return false;
  if (filter.includes('\u0000') || !isWellFormed(filter)) return false;
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i] as string;
    if (level === '#') {
      if (i !== levels.length - 1) return false;
    } else if (level === '+') {
      // a whole level: fine
    } else if (level.includes('+') || level.includes('#')) {
      return false;
    }
  }
  return true;
}

/** Levels of a topic name or filter: `a/b/c` has 3, `a` and `/` 1 and 2. */
export function topicLevels(topic: string): number {
  let levels = 1;
  for (let i = 0; i < topic.length; i++) if (topic.charCodeAt(i) === 0x2f) levels++;
  return levels;
}

/**
 * Whether `topic` (a valid topic name) matches `filter` (a valid topic filter). Topics starting with
 * `$` are not matched by a filter whose first level is a wildcard (§4.7.2).
 */
export function topicMatches(filter: string, topic: string): boolean {
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === '#') return true; // also matches the parent level: `a/#` matches `a`
    if (i >= t.length) return false;
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}

/** No lone surrogates (which cannot be encoded as UTF-8) and no U+FFFD left by a lossy decode. */
function isWellFormed(text: string): boolean {
  return !/[\uD800-\uDFFF\uFFFD]/u.test(text);
}
