// System payloads (messages for the agent itself, not its apps) go to the service that owns their kind
// (PROTOCOL.md §13.5-§17): each service registers for its own. Coordination also gets unknown kinds, which
// it counts.
import type { Counters } from '../core/counters.js';
import { actsOnDevice } from '../protocol/coordination.js';
import {
  type SystemHandlers,
  type SystemMessage,
  type SystemService,
  systemKindOf,
  systemServiceOf,
} from '../protocol/system-kind.js';

export interface SystemInboxOptions {
  counters: Counters;
  /**
   * Called before a routed call or lease is handed on: it makes the message's replay mark durable, so not
   * even a crash right after lets the same routed message run it again (link-local ones ride a Noise session).
   */
  beforeActing: () => void;
}

export class SystemInbox implements SystemHandlers {
  readonly #handlers = new Map<SystemService, (message: SystemMessage) => void>();

  constructor(private readonly options: SystemInboxOptions) {}

  register(service: SystemService, handler: (message: SystemMessage) => void): void {
    if (this.#handlers.has(service)) throw new Error(`system service ${service} registered twice`);
    this.#handlers.set(service, handler);
  }

  deliver(message: SystemMessage): void {
    const service = systemServiceOf(message.payload);
    const handler = this.#handlers.get(service);
    if (handler === undefined) {
      this.options.counters.increment('messages.system_unhandled');
      return;
    }
    if (service === 'coordination' && !message.overDirectLink && actsOnDevice(systemKindOf(message.payload)))
      this.options.beforeActing();
    handler(message);
  }
}
