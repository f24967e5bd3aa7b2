// The part of qlobber's API the broker uses (the package ships no types).
declare module 'qlobber' {
  export interface QlobberOptions {
    separator?: string;
    wildcard_one?: string;
    wildcard_some?: string;
    /** `wildcard_one` also matches an empty level (MQTT's `+` does). */
    match_empty_levels?: boolean;
  }

  /** A topic trie whose matches are de-duplicated in a Set. */
  export class QlobberDedup<V> {
    constructor(options?: QlobberOptions);
    add(topic: string, value: V): this;
    remove(topic: string, value?: V): this;
    match(topic: string): Set<V>;
    clear(): this;
  }
}
