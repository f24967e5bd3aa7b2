// Retained messages, one per topic name, bounded in count and bytes (payload, topic, and the tree's nodes).
// An empty payload clears a topic. They are kept in a tree of topic levels, so that finding those a new
// subscription matches walks its filter's levels instead of comparing it with every retained topic.

import { type BrokerMessage, heldBytesOf, isExpired } from './session-store.js';

/** What one level of a stored topic is counted as, beside its bytes: the tree node holding it. */
const NODE_BYTES = 200;

interface TopicNode {
  /** Children by level name, made on first use. */
  children?: Map<string, TopicNode>;
  message?: BrokerMessage;
}

export class RetainedStore {
  readonly #root: TopicNode = {};
  #count = 0;
  #bytes = 0;

  constructor(
    private readonly maxMessages: number,
    private readonly maxBytes: number,
  ) {}

  get size(): number {
    return this.#count;
  }

  /** Stores (or clears, for an empty payload) the topic's retained message; false when over a bound. */
  set(message: BrokerMessage): boolean {
    const levels = message.topic.split('/');
    const previous = this.#find(levels);
    if (message.payload.length === 0) {
      if (previous !== undefined) this.#remove(levels);
      return true;
    }
    const addedBytes =
      costOf(message, levels.length) - (previous === undefined ? 0 : costOf(previous, levels.length));
    const addedCount = previous === undefined ? 1 : 0;
    if (this.#count + addedCount > this.maxMessages || this.#bytes + addedBytes > this.maxBytes) return false;
    let node = this.#root;
    for (const level of levels) {
      node.children ??= new Map();
      let child = node.children.get(level);
      if (child === undefined) {
        child = {};
        node.children.set(level, child);
      }
      node = child;
    }
    node.message = { ...message, retain: true };
    this.#count += addedCount;
    this.#bytes += addedBytes;
    return true;
  }

  /**
   * The retained messages whose topic matches `filter` (a valid topic filter). Topics starting with `$`
   * are not matched by a filter whose first level is a wildcard (§4.7.2). Those whose Message Expiry
   * Interval ran out are removed instead.
   */
  match(filter: string): BrokerMessage[] {
    const levels = filter.split('/');
    const found: BrokerMessage[] = [];
    // Depth-first without recursion: a filter may have as many levels as the broker allows.
    const stack: Array<{ node: TopicNode; depth: number }> = [{ node: this.#root, depth: 0 }];
    for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
      const { node, depth } = top;
      if (depth === levels.length) {
        if (node.message !== undefined) found.push(node.message);
        continue;
      }
      const level = levels[depth] as string;
      if (level === '#') {
        collectAll(node, depth === 0, found); // `a/#` matches `a` too
      } else if (level === '+') {
        for (const [name, child] of node.children ?? []) {
          if (depth === 0 && name.startsWith('$')) continue;
          stack.push({ node: child, depth: depth + 1 });
        }
      } else {
        const child = node.children?.get(level);
        if (child !== undefined) stack.push({ node: child, depth: depth + 1 });
      }
    }
    const now = Date.now();
    const live = found.filter((message) => !isExpired(message, now));
    if (live.length < found.length)
      for (const message of found) if (isExpired(message, now)) this.#remove(message.topic.split('/'));
    return live;
  }

  clear(): void {
    this.#root.children = undefined;
    this.#count = 0;
    this.#bytes = 0;
  }

  #find(levels: readonly string[]): BrokerMessage | undefined {
    let node: TopicNode | undefined = this.#root;
    for (const level of levels) node = node?.children?.get(level);
    return node?.message;
  }

  /** Removes the message at `levels` and the nodes left empty on its path. */
  #remove(levels: readonly string[]): void {
    const path: TopicNode[] = [this.#root];
    for (const level of levels)
      path.push((path[path.length - 1] as TopicNode).children?.get(level) as TopicNode);
    const leaf = path[path.length - 1] as TopicNode;
    this.#count--;
    this.#bytes -= costOf(leaf.message as BrokerMessage, levels.length);
    leaf.message = undefined;
    for (let depth = levels.length; depth > 0; depth--) {
      const node = path[depth] as TopicNode;
      if (node.message !== undefined || (node.children?.size ?? 0) > 0) break;
      (path[depth - 1] as TopicNode).children?.delete(levels[depth - 1] as string);
    }
  }
}

function costOf(message: BrokerMessage, levels: number): number {
  return heldBytesOf(message) + levels * NODE_BYTES;
}

/** Every message at or under `node`; under the root, none whose topic starts with `$`. */
function collectAll(node: TopicNode, atRoot: boolean, found: BrokerMessage[]): void {
  const stack: TopicNode[] = [];
  if (atRoot) {
    for (const [name, child] of node.children ?? []) if (!name.startsWith('$')) stack.push(child);
  } else {
    stack.push(node);
  }
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    if (next.message !== undefined) found.push(next.message);
    for (const child of next.children?.values() ?? []) stack.push(child);
  }
}
