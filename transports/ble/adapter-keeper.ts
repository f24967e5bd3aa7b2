// Keeps one BLE role (peripheral or central) open on its adapter: when the adapter goes away (USB unplug,
// controller reset, UART gone) the dead instance is stopped and the role reopened, with backoff, until the
// adapter is back. The libraries cannot do it themselves: their UART driver never finds a re-created port.

import { Backoff } from '../../agent/core/backoff.js';
import { type BleAdapter, formatBleAdapter } from '../../agent/core/ble-adapter.js';

export type BleRole = 'peripheral' | 'central';

/** What the agent logs and counts when an adapter goes or comes back. */
export interface AdapterChange {
  role: BleRole;
  adapter: string;
  state: 'lost' | 'back';
  detail: string;
}

/** A role instance (BlePeripheral, BleCentral): reports its adapter's loss once, stops without hanging. */
export interface RoleInstance {
  on(event: 'lost', listener: (error: Error) => void): unknown;
  stop(): Promise<void>;
}

export interface AdapterKeeperOptions<T> {
  role: BleRole;
  adapter: BleAdapter;
  open: () => Promise<T>;
  /** A reopened instance, to wire up like the first one. */
  onReopened: (instance: T) => void;
  onChange: (change: AdapterChange) => void;
  /** First retry after about this long, doubling to maxRetryMs. */
  initialRetryMs?: number;
  maxRetryMs?: number;
}

const DEFAULT_INITIAL_RETRY_MS = 1_000;
const DEFAULT_MAX_RETRY_MS = 30_000;

export class AdapterKeeper<T extends RoleInstance> {
  readonly #options: AdapterKeeperOptions<T>;
  readonly #backoff: Backoff;
  #current: T | undefined;
  #timer: NodeJS.Timeout | undefined;
  #lostAtMs = 0;
  #isStopped = false;

  constructor(options: AdapterKeeperOptions<T>) {
    this.#options = options;
    this.#backoff = new Backoff({
      initialMs: options.initialRetryMs ?? DEFAULT_INITIAL_RETRY_MS,
      maxMs: options.maxRetryMs ?? DEFAULT_MAX_RETRY_MS,
    });
  }

  /** The open instance; undefined while the adapter is gone. */
  get current(): T | undefined {
    return this.#current;
  }

  /** Takes charge of an instance opened by the caller (the first one, whose failure the caller reports). */
  adopt(instance: T): void {
    this.#current = instance;
    instance.on('lost', (error) => this.#lost(instance, error));
  }

  async stop(): Promise<void> {
    this.#isStopped = true;
    clearTimeout(this.#timer);
    const instance = this.#current;
    this.#current = undefined;
    await instance?.stop();
  }

  #lost(instance: T, error: Error): void {
    if (this.#isStopped || this.#current !== instance) return;
    this.#current = undefined;
    this.#lostAtMs = Date.now();
    this.#change('lost', `${error.message}; reopening it until it is back`);
    void instance.stop().catch(() => undefined);
    this.#retryLater();
  }

  #retryLater(): void {
    this.#timer = setTimeout(() => void this.#reopen(), this.#backoff.next());
    this.#timer.unref();
  }

  async #reopen(): Promise<void> {
    let instance: T;
    try {
      instance = await this.#options.open();
    } catch {
      if (!this.#isStopped) this.#retryLater();
      return;
    }
    if (this.#isStopped) {
      await instance.stop().catch(() => undefined);
      return;
    }
    this.#backoff.reset();
    this.adopt(instance);
    this.#change('back', `reopened after ${Math.round((Date.now() - this.#lostAtMs) / 1000)} s`);
    this.#options.onReopened(instance);
  }

  #change(state: AdapterChange['state'], detail: string): void {
    const { role, adapter } = this.#options;
    this.#options.onChange({ role, adapter: formatBleAdapter(adapter), state, detail });
  }
}
