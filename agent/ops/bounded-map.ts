// The one way every bounded table in the agent makes room: Maps keep insertion order, so re-inserting an entry
// makes it the most recent and the first key is always the one to drop when the table is full.

/**
 * Sets `key` to `value` as the most recent entry of `map`, first dropping the oldest entry when the map
 * already holds `capacity` others. Returns the key dropped, if one was (so callers can count or react).
 */
export function setBounded<K, V>(map: Map<K, V>, key: K, value: V, capacity: number): K | undefined {
  map.delete(key);
  let dropped: K | undefined;
  if (map.size >= capacity) {
    dropped = map.keys().next().value;
    if (dropped !== undefined) map.delete(dropped);
  }
  map.set(key, value);
  return dropped;
}
