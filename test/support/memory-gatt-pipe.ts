// An in-process GattPipe pair (transports/ble/gatt-link.ts) for unit tests of the BLE link without a radio.
// Fragments travel in order, a batch per event-loop turn, with a small credit window like an HCI controller's.
import type { GattPipe } from '../../transports/ble/gatt-link.js';

export interface MemoryGattPipeOptions {
  maxFragmentBytes: number;
  /**
   * Fragments a side may have in flight before write() returns a promise (HCI ACL credits). 1 makes every
   * write wait for delivery; a large number makes the pipe never push back.
   */
  creditWindow?: number;
}

type Entry = { kind: 'fragment'; fragment: Uint8Array } | { kind: 'close' };

export class MemoryGattPipe implements GattPipe {
  readonly maxFragmentBytes: number;
  peer: MemoryGattPipe | undefined;
  /** Every fragment written, for tests that count or tamper. */
  writtenFragments = 0;
  readonly #creditWindow: number;
  #outbox: Entry[] = [];
  #isDeliveryScheduled = false;
  #creditWaiters: Array<() => void> = [];
  #fragmentListener: ((fragment: Uint8Array) => void) | undefined;
  #closeListener: ((error: Error | undefined) => void) | undefined;
  #isClosed = false;

  constructor(
    readonly remoteAddress: string,
    options: MemoryGattPipeOptions,
  ) {
    this.maxFragmentBytes = options.maxFragmentBytes;
    this.#creditWindow = options.creditWindow ?? 8;
  }

  write(fragment: Uint8Array): Promise<void> | undefined {
    if (this.#isClosed) return Promise.reject(new Error('memory GATT pipe is closed'));
    if (fragment.length > this.maxFragmentBytes) {
      return Promise.reject(new Error(`fragment of ${fragment.length} bytes over ${this.maxFragmentBytes}`));
    }
    this.writtenFragments++;
    this.#outbox.push({ kind: 'fragment', fragment: Uint8Array.from(fragment) });
    this.#scheduleDelivery();
    if (this.#outbox.length < this.#creditWindow) return undefined;
    return new Promise((resolve) => this.#creditWaiters.push(resolve));
  }

  onFragment(listener: (fragment: Uint8Array) => void): void {
    this.#fragmentListener = listener;
  }

  onClose(listener: (error: Error | undefined) => void): void {
    this.#closeListener = listener;
  }

  /** What is already written still reaches the remote, then it hears the close (a GATT disconnect). */
  close(): void {
    if (this.#isClosed) return;
    this.#outbox.push({ kind: 'close' });
    this.#scheduleDelivery();
    this.#closed(undefined);
  }

  /** As if the radio link dropped: the remote hears nothing more, both sides close with `error`. */
  breakLink(error: Error): void {
    this.#outbox = [];
    this.#closed(error);
    this.peer?.hearClose(error);
  }

  /** Called by the peer when the radio link breaks. */
  hearClose(error: Error): void {
    this.#closed(error);
  }

  #closed(error: Error | undefined): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    for (const resolve of this.#creditWaiters.splice(0)) resolve();
    queueMicrotask(() => this.#closeListener?.(error));
  }

  #scheduleDelivery(): void {
    if (this.#isDeliveryScheduled) return;
    this.#isDeliveryScheduled = true;
    setImmediate(() => {
      this.#isDeliveryScheduled = false;
      const batch = this.#outbox;
      this.#outbox = [];
      for (const entry of batch) this.peer?.receive(entry);
      for (const resolve of this.#creditWaiters.splice(0)) resolve();
    });
  }

  /** Called by the peer's delivery. */
  receive(entry: Entry): void {
    if (this.#isClosed) return;
    if (entry.kind === 'close') this.#closed(undefined);
    else this.#fragmentListener?.(entry.fragment);
  }
}

export function memoryGattPipePair(
  options: MemoryGattPipeOptions,
): [central: MemoryGattPipe, peripheral: MemoryGattPipe] {
  const central = new MemoryGattPipe('memory-ble:peripheral', options);
  const peripheral = new MemoryGattPipe('memory-ble:central', options);
  central.peer = peripheral;
  peripheral.peer = central;
  return [central, peripheral];
}
