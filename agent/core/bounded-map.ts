// The one way every bounded table in the agent makes room: Maps keep insertion order, so re-inserting an entry
// makes it the most recent and the first key is always the one to drop when the table is full.
//
// Finding that first key is the subtle part. A Map's deleted entries stay as holes in its table until it is
// rehashed, and a new iterator walks from the start over every hole: `map.keys().next()` on a full table that
// keeps dropping its oldest costs time in proportion to its size (4.5 µs a call at 16,384 entries, 19 µs at
// 65,536, measured on the bench machine). So each map keeps one iterator: everything behind it has been dropped,
// so its next key is the oldest one left, and each hole is walked over once.

const cursors = new WeakMap<Map<unknown, unknown>, Iterator<unknown>>();

/** The oldest key of `map` (the one inserted or re-inserted longest ago), for a caller about to delete it. */
export function oldestKey<K>(map: Map<K, unknown>): K | undefined {
  const cursor = cursors.get(map) as Iterator<K> | undefined;
  if (cursor !== undefined) {
    const next = cursor.next();
    if (next.done !== true) return next.value;
  }
  // First use, or every entry behind the old cursor went: a finished iterator never sees new entries.
  const fresh = map.keys();
  cursors.set(map, fresh);
  const first = fresh.next();
  return first.done === true ? undefined : first.value;
}

/**
 * Sets `key` to `value` as the most recent entry of `map`, first dropping the oldest entry when the map
 * already holds `capacity` others. Returns the key dropped, if one was (so callers can count or react).
 */
export function setBounded<K, V>(map: Map<K, V>, key: K, value: V, capacity: number): K | undefined {
  map.delete(key);
  let dropped: K | undefined;
  if (map.size >= capacity) {
    dropped = oldestKey(map);
    if (dropped !== undefined) map.delete(dropped);
  }
  map.set(key, value);
  return dropped;
}
