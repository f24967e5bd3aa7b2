// The peripheral role on one adapter (bleno): advertises the nearmesh service (from a random address when asked),
// serves RX/TX, and turns every subscribed central into a GattPipe for gatt-link.ts. Used by ble-transport.ts
// for inbound links.
import type { Bleno, ConnectionHandle, UpdateValueCallback } from '@stoprocent/bleno';
import type { BleAdapter } from '../../agent/core/ble-adapter.js';
import { TypedEmitter } from '../../agent/core/events.js';
import { type EncodedAdvertisement, NEARMESH_SERVICE_UUID_HEX } from './advertisement.js';
import { BleAddressError } from './errors.js';
import { type GattPipe, PipeInbox } from './gatt-link.js';
import { RX_CHARACTERISTIC_UUID_HEX, TX_CHARACTERISTIC_UUID_HEX } from './gatt-service.js';
import { blenoHciSocket, formatAddress, useAdvertisingAddress } from './private-address.js';
import {
  type AclBacklog,
  ADAPTER_REPLY_MS,
  BACKLOG_HIGH_PACKETS,
  BACKLOG_LOW_PACKETS,
  BACKLOG_MAX_WAIT_MS,
  BleAdapterLostError,
  BleDisconnectedError,
  CLOSE_FLUSH_MAX_MS,
  DISCONNECT_CONFIRM_MS,
  findAclBacklog,
  ORDERLY_DISCONNECT_REASONS,
  onHciDisconnect,
  openBleno,
  withinMs,
} from './radio.js';

/** RX fragments a central may write before subscribing to TX; more is not a nearmesh central. */
const MAX_EARLY_FRAGMENTS = 64;

export interface BlePeripheralOptions {
  adapter: BleAdapter;
  /** Raw advertising data and scan response (advertisement.ts). */
  advertisement: EncodedAdvertisement;
  /** A random address to advertise from (private-address.ts); none: the controller's own address. */
  randomAddress?: Uint8Array;
  powerOnTimeoutMs?: number;
  /** The central role uses the same controller (shared-hci.ts). */
  isShared?: boolean;
}

export interface BlePeripheralEvents {
  /** A central connected and subscribed to TX: a pipe ready for a GattLink. */
  pipe: (pipe: GattPipe) => void;
  /** The adapter left the powered-on state (unplugged, reset): this instance is dead, its pipes closed. */
  lost: (error: Error) => void;
  warning: (error: Error) => void;
}

export class BlePeripheral extends TypedEmitter<BlePeripheralEvents> {
  readonly #bleno: Bleno;
  readonly #backlog: AclBacklog | undefined;
  readonly #addresses = new Map<ConnectionHandle, string>();
  readonly #pipes = new Map<ConnectionHandle, PeripheralPipe>();
  readonly #early = new Map<ConnectionHandle, Uint8Array[]>();
  /** HCI disconnect reasons by handle, noted just before bleno reports the disconnect without one. */
  readonly #disconnectReasons = new Map<ConnectionHandle, number>();
  #isStopped = false;
  /** The random address advertised from, once the controller took one. */
  #randomAddress: string | undefined;
  /** Advertising changes, one after the other (each is a stop and a start on the controller). */
  #advertising: Promise<void> = Promise.resolve();

  private constructor(bleno: Bleno) {
    super();
    this.#bleno = bleno;
    this.#backlog = findAclBacklog(bleno, 'bleno');
    onHciDisconnect(bleno, (handle, reason) => this.#disconnectReasons.set(handle, reason));
  }

  /** Powers the adapter on, publishes the service and starts advertising. */
  static async open(options: BlePeripheralOptions): Promise<BlePeripheral> {
    const bleno = await openBleno(options.adapter, options.powerOnTimeoutMs, options.isShared);
    const peripheral = new BlePeripheral(bleno);
    await peripheral.#publish(options);
    return peripheral;
  }

  /** The controller's own (public) address. */
  get address(): string {
    return this.#bleno.address;
  }

  /** The address scanners see: the random one advertised from, else the controller's own. */
  get advertisingAddress(): string {
    return this.#randomAddress ?? this.#bleno.address;
  }

  /**
   * Replaces the advertising data and scan response and, given one, the random address advertised from; changes
   * apply in the order they were made. A controller that refuses the address (BleAddressError) keeps
   * advertising the new data from the old address.
   */
  advertise(advertisement: EncodedAdvertisement, randomAddress?: Uint8Array): Promise<void> {
    const next = this.#advertising.then(async () => {
      if (this.#isStopped) return;
      await this.#bleno.stopAdvertisingAsync();
      let refused: BleAddressError | undefined;
      if (randomAddress !== undefined) {
        refused = await this.#useAddress(randomAddress).then(
          () => undefined,
          (error: unknown) => (error instanceof BleAddressError ? error : Promise.reject(error)),
        );
      }
      await this.#startAdvertising(advertisement);
      if (refused !== undefined) throw refused;
    });
    this.#advertising = next.catch(() => undefined);
    return next;
  }

  /**
   * Stops advertising, after the changes queued before it: no central can connect until the next advertise().
   * Centrals already connected stay. A controller that is gone never confirms: it is not waited for.
   */
  stopAdvertising(): Promise<void> {
    const next = this.#advertising.then(async () => {
      if (this.#isStopped) return;
      await withinMs(this.#bleno.stopAdvertisingAsync(), ADAPTER_REPLY_MS);
    });
    this.#advertising = next.catch(() => undefined);
    return next;
  }

  /** Disconnects every central and stops advertising; the bleno instance is not reusable afterwards. */
  async stop(): Promise<void> {
    if (this.#isStopped) return;
    this.#isStopped = true;
    for (const pipe of this.#pipes.values()) pipe.close();
    // A controller that is gone never confirms: do not wait for it.
    await withinMs(this.#bleno.stopAdvertisingAsync(), ADAPTER_REPLY_MS);
    try {
      this.#bleno.stop();
    } catch {
      // Its port is already closed (unplugged): nothing left to stop.
    }
  }

  async #publish(options: BlePeripheralOptions): Promise<void> {
    const bleno = this.#bleno;
    const rx = new bleno.Characteristic({
      uuid: RX_CHARACTERISTIC_UUID_HEX,
      properties: ['writeWithoutResponse'],
      onWriteRequest: (handle, data, _offset, withoutResponse, callback) => {
        this.#onRx(handle, data);
        if (!withoutResponse) callback(0);
      },
    });
    const tx = new bleno.Characteristic({
      uuid: TX_CHARACTERISTIC_UUID_HEX,
      properties: ['notify'],
      onSubscribe: (handle, maxValueSize, update) => this.#onSubscribe(handle, maxValueSize, update),
      // Unsubscribing ends the link (nearmesh centrals stay subscribed for its life). bleno also unsubscribes
      // on every disconnect, just before reporting it: wait a turn so the disconnect, with its reason, wins.
      onUnsubscribe: (handle) => {
        setImmediate(() => this.#pipes.get(handle)?.close());
      },
    });
    bleno.on('accept', (address, handle) => this.#addresses.set(handle, address));
    bleno.on('disconnect', (address, handle) => this.#onDisconnect(address, handle));
    bleno.on('stateChange', (state) => {
      if (state !== 'poweredOn' && !this.#isStopped) {
        for (const [handle, pipe] of this.#pipes) this.#onDisconnect(pipe.remoteAddress, handle);
        this.emit('lost', new BleAdapterLostError(options.adapter, state));
      }
    });
    await bleno.setServicesAsync([
      new bleno.PrimaryService({ uuid: NEARMESH_SERVICE_UUID_HEX, characteristics: [rx, tx] }),
    ]);
    if (options.randomAddress !== undefined) {
      await this.#useAddress(options.randomAddress).catch((error: unknown) => {
        if (!(error instanceof BleAddressError)) throw error;
        // Advertising from the controller's address beats not advertising; said once the caller listens.
        setImmediate(() => this.emit('warning', error));
      });
    }
    await this.#startAdvertising(options.advertisement);
  }

  async #startAdvertising({ advertisingData, scanResponse }: EncodedAdvertisement): Promise<void> {
    await this.#bleno.startAdvertisingWithEIRDataAsync(
      Buffer.from(advertisingData),
      Buffer.from(scanResponse),
    );
  }

  /** Only while advertising is off: controllers refuse a new address while they advertise from the old one. */
  async #useAddress(address: Uint8Array): Promise<void> {
    const socket = blenoHciSocket(this.#bleno);
    if (socket === undefined) throw new BleAddressError('this bleno version hides its HCI socket');
    await useAdvertisingAddress(socket, address);
    this.#randomAddress = formatAddress(address);
  }

  #onRx(handle: ConnectionHandle, data: Buffer): void {
    const pipe = this.#pipes.get(handle);
    if (pipe !== undefined) {
      pipe.deliver(data);
      return;
    }
    const early = this.#early.get(handle) ?? [];
    if (early.length >= MAX_EARLY_FRAGMENTS) return;
    early.push(Uint8Array.from(data));
    this.#early.set(handle, early);
  }

  #onSubscribe(handle: ConnectionHandle, maxValueSize: number, update: UpdateValueCallback): void {
    if (this.#isStopped || this.#pipes.has(handle)) return;
    const address = this.#addresses.get(handle) ?? `handle:${handle}`;
    // bleno 0.12 takes the handle (its typings say no argument): without it, every central is dropped.
    const disconnect = this.#bleno.disconnect as (this: Bleno, handle?: ConnectionHandle) => void;
    const pipe = new PeripheralPipe(address, maxValueSize, update, this.#backlog, () =>
      disconnect.call(this.#bleno, handle),
    );
    this.#pipes.set(handle, pipe);
    this.emit('pipe', pipe);
    for (const fragment of this.#early.get(handle) ?? []) pipe.deliver(fragment);
    this.#early.delete(handle);
  }

  #onDisconnect(address: string, handle: ConnectionHandle): void {
    this.#addresses.delete(handle);
    this.#early.delete(handle);
    const pipe = this.#pipes.get(handle);
    this.#pipes.delete(handle);
    const reason = this.#disconnectReasons.get(handle);
    this.#disconnectReasons.delete(handle);
    const isOrderly = reason !== undefined && ORDERLY_DISCONNECT_REASONS.has(reason);
    pipe?.closed(
      isOrderly ? undefined : new BleDisconnectedError(address, `HCI reason ${reason ?? 'unknown'}`),
    );
  }
}

/** One subscribed central: fragments in through RX writes, out through TX notifications. */
class PeripheralPipe implements GattPipe {
  readonly #inbox = new PipeInbox();
  #closeListener: ((error: Error | undefined) => void) | undefined;
  #isClosing = false;
  #isClosed = false;

  constructor(
    readonly remoteAddress: string,
    readonly maxFragmentBytes: number,
    readonly notify: UpdateValueCallback,
    readonly backlog: AclBacklog | undefined,
    readonly disconnect: () => void,
  ) {}

  write(fragment: Uint8Array): Promise<void> | undefined {
    if (this.#isClosing) return Promise.reject(new BleDisconnectedError(this.remoteAddress, 'closed'));
    this.notify(Buffer.from(fragment.buffer, fragment.byteOffset, fragment.byteLength));
    if (this.backlog === undefined || this.backlog.packets() < BACKLOG_HIGH_PACKETS) return undefined;
    return this.backlog.waitAtMost(BACKLOG_LOW_PACKETS, BACKLOG_MAX_WAIT_MS);
  }

  onFragment(listener: (fragment: Uint8Array) => void): void {
    this.#inbox.setListener(listener);
  }

  onClose(listener: (error: Error | undefined) => void): void {
    this.#closeListener = listener;
  }

  close(): void {
    if (this.#isClosing) return;
    this.#isClosing = true;
    // A disconnect overtakes queued data (HCI commands do not wait behind ACL packets): let the link's last
    // fragments reach the controller first, as FrameLink.close() promises.
    const flushed = this.backlog?.waitAtMost(0, CLOSE_FLUSH_MAX_MS) ?? Promise.resolve();
    void flushed.then(() => {
      try {
        this.disconnect();
      } catch {
        // The adapter is already gone (bleno stopped, pty unplugged): the timer below still closes the pipe.
      }
      // Our own close is orderly whatever reason the controller later reports.
      setTimeout(() => this.closed(undefined), DISCONNECT_CONFIRM_MS).unref();
    });
  }

  /** Fragments that arrive before the link takes the pipe are kept for it. */
  deliver(fragment: Uint8Array): void {
    if (!this.#isClosed) this.#inbox.deliver(fragment);
  }

  closed(error: Error | undefined): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.#closeListener?.(this.#isClosing ? undefined : error);
  }
}
