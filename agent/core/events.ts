// A typed wrapper over node:events so every component declares the events it emits.
// Listeners get exactly the argument types the map names; no string-typed event soup.
import { EventEmitter } from 'node:events';

// biome-ignore lint/suspicious/noExplicitAny: listener argument tuples are checked through the map
export type EventMap<E> = { [K in keyof E]: (...args: any[]) => void };

export class TypedEmitter<E extends EventMap<E>> {
  readonly #emitter = new UnboundedEmitter();

  on<K extends keyof E & string>(event: K, listener: E[K]): this {
    this.#emitter.on(event, listener);
    return this;
  }

  once<K extends keyof E & string>(event: K, listener: E[K]): this {
    this.#emitter.once(event, listener);
    return this;
  }

  off<K extends keyof E & string>(event: K, listener: E[K]): this {
    this.#emitter.off(event, listener);
    return this;
  }

  protected emit<K extends keyof E & string>(event: K, ...args: Parameters<E[K]>): boolean {
    return this.#emitter.emit(event, ...args);
  }

  listenerCount<K extends keyof E & string>(event: K): number {
    return this.#emitter.listenerCount(event);
  }
}

// Unbounded listeners are legitimate here (one per control-socket client on 'message').
class UnboundedEmitter extends EventEmitter {
  constructor() {
    super({ captureRejections: false });
    this.setMaxListeners(0);
  }
}
