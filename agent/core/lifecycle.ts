// One contract for the agent's parts: each is started once, in dependency order, and stopped by one loop
// in the reverse order, so what was started last (the front ends) stops first and what everything rests
// on (the trust store) closes last. A part that fails to stop is logged and the loop goes on.
import type { Logger } from './logger.js';

/** A part of the agent that runs between start and stop. `start` is optional: some only need stopping. */
export interface Startable {
  start?(): void | Promise<void>;
  stop(): void | Promise<void>;
}

export class Lifecycle {
  readonly #running: { readonly name: string; readonly part: Startable }[] = [];

  constructor(private readonly log: Logger) {}

  /** Starts `part` and, once it has started, remembers it for `stopAll`; returns it. */
  async start<T extends Startable>(name: string, part: T): Promise<T> {
    await part.start?.();
    this.#running.push({ name, part });
    return part;
  }

  /** Stops every started part, last started first. Safe to call again (there is nothing left to stop). */
  async stopAll(): Promise<void> {
    for (let entry = this.#running.pop(); entry !== undefined; entry = this.#running.pop()) {
      try {
        await entry.part.stop();
      } catch (error) {
        this.log.warn({ err: error, part: entry.name }, 'a part of the agent did not stop cleanly');
      }
    }
  }
}
