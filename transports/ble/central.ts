// The central role on one adapter (noble): scans for the nearmesh service, reports what it hears, connects on
// request (MTU exchange, TX subscription) and hands back a GattPipe. Used by ble-transport.ts.
import type { Characteristic, ConnectOptions, Noble, Peripheral } from '@stoprocent/noble';
import type { BleAdapter } from '../../agent/core/ble-adapter.js';
import { setBounded } from '../../agent/core/bounded-map.js';
import { TimeoutError } from '../../agent/core/errors.js';
import { TypedEmitter } from '../../agent/core/events.js';
import { DialError, OlderAgentError } from '../errors.js';
import { ADVERTISER_WARNING_INTERVAL_MS, OncePerInterval } from '../once-per-interval.js';
import {
  decodeAdvertisementParts,
  isNearmeshServiceUuid,
  NEARMESH_SERVICE_UUID_HEX,
  type NearmeshAdvertisement,
} from './advertisement.js';
import { AdvertisementError } from './errors.js';
import { ATT_HEADER_BYTES, DEFAULT_ATT_MTU } from './fragmentation.js';
import { type GattPipe, PipeInbox } from './gatt-link.js';
import { RX_CHARACTERISTIC_UUID_HEX, TX_CHARACTERISTIC_UUID_HEX } from './gatt-service.js';
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
  openNoble,
  withinMs,
} from './radio.js';

/** What noble asks for by default and bleno allows at most; fragments are then 253 bytes. */
export const DEFAULT_REQUESTED_MTU = 256;
export const DEFAULT_BLE_CONNECT_TIMEOUT_MS = 10_000;
/** Peripherals remembered for stray-connection cleanup; beyond it the one heard longest ago is forgotten. */
const MAX_PERIPHERALS_KEPT = 256;
/** Advertisers whose last warning is remembered; beyond it warnings are dropped (and counted). */
const MAX_WARNED_ADVERTISERS = 256;
/** How long to wait for the MTU exchange after connecting before assuming the default 23. */
const MTU_EXCHANGE_WAIT_MS = 3000;

export interface DiscoveredPeripheral {
  /** noble's id for it, what connect() and BleTransport.dial() take. */
  id: string;
  address: string;
  /** dBm; 127 means "not available" (the emulator always says so). */
  rssi: number;
  advertisement: NearmeshAdvertisement;
}

export interface BleCentralEvents {
  discover: (peripheral: DiscoveredPeripheral) => void;
  /** The adapter left the powered-on state (unplugged, reset): this instance is dead, its pipes closed. */
  lost: (error: Error) => void;
  warning: (error: Error) => void;
}

export interface BleConnectOptions {
  /** ATT MTU to ask for; 23 holds the link at the default. */
  mtu?: number;
  timeoutMs?: number;
}

export interface CentralPipe extends GattPipe {
  readonly attMtu: number;
}

export class BleCentral extends TypedEmitter<BleCentralEvents> {
  readonly #noble: Noble;
  readonly #backlog: AclBacklog | undefined;
  #isScanning = false;
  #isStopped = false;
  /** Connects in progress: noble pauses the scan for them and resumes it after, so a rescan must wait. */
  #connecting = 0;
  #connectQueue: Promise<void> = Promise.resolve();
  /** noble's objects for the peripherals heard, by id, to find connections no pipe owns. */
  readonly #heard = new Map<string, Peripheral>();
  readonly #pipes = new Set<NoblePipe>();
  readonly #warned = new OncePerInterval(ADVERTISER_WARNING_INTERVAL_MS, MAX_WARNED_ADVERTISERS);

  private constructor(noble: Noble, adapter: BleAdapter) {
    super();
    this.#noble = noble;
    this.#backlog = findAclBacklog(noble, 'noble');
    // Attached before any scan: the emulator reports advertisers before startScanningAsync() resolves.
    noble.on('discover', (peripheral) => this.#onDiscover(peripheral));
    noble.on('stateChange', (state) => {
      // noble has already ended the connections (its bindings disconnect every handle on power-off).
      if (state !== 'poweredOn' && !this.#isStopped)
        this.emit('lost', new BleAdapterLostError(adapter, state));
    });
  }

  /** `isShared`: the peripheral role uses the same controller (shared-hci.ts). */
  static async open(adapter: BleAdapter, powerOnTimeoutMs?: number, isShared = false): Promise<BleCentral> {
    return new BleCentral(await openNoble(adapter, powerOnTimeoutMs, isShared), adapter);
  }

  get address(): string {
    return this.#noble.address;
  }

  /** Whether the scan is wanted (it may be paused for a connect in progress). */
  get isScanning(): boolean {
    return this.#isScanning;
  }

  /**
   * Scans for the nearmesh service until stopScanning(); noble pauses the scan to connect, we resume it.
   * Asked while a connect is in progress, the scan starts when the connect ends (a controller creating a
   * connection may refuse a scan start, and noble would then wait forever for its confirmation).
   */
  async startScanning(): Promise<void> {
    this.#isScanning = true;
    if (this.#connecting > 0) return;
    await this.#noble.startScanningAsync([NEARMESH_SERVICE_UUID_HEX], false);
  }

  async stopScanning(): Promise<void> {
    this.#isScanning = false;
    await this.#noble.stopScanningAsync();
  }

  /** Restarts the scan: the emulator (and a scanner without duplicates) reports each advertiser once per start. */
  async rescan(): Promise<void> {
    if (!this.#isScanning || this.#isStopped || this.#connecting > 0) return;
    await this.#noble.stopScanningAsync();
    await this.#noble.startScanningAsync([NEARMESH_SERVICE_UUID_HEX], false);
  }

  async stop(): Promise<void> {
    if (this.#isStopped) return;
    this.#isStopped = true;
    for (const pipe of this.#pipes) pipe.close();
    // A controller that is gone never confirms: do not wait for it.
    await withinMs(this.#noble.stopScanningAsync(), ADAPTER_REPLY_MS);
    try {
      this.#noble.stop();
    } catch {
      // Its port is already closed (unplugged): nothing left to stop.
    }
  }

  /**
   * Connects to a discovered peripheral; rejects with DialError. Attempts run one at a time (a controller
   * creates one connection at a time, and noble would otherwise queue them inside our timeouts); the
   * timeout starts when this attempt's turn comes.
   */
  async connect(id: string, options: BleConnectOptions = {}): Promise<CentralPipe> {
    const turn = this.#connectQueue.then(() => this.#attempt(id, options));
    this.#connectQueue = turn.then(
      () => undefined,
      () => undefined,
    );
    return turn;
  }

  async #attempt(id: string, options: BleConnectOptions): Promise<CentralPipe> {
    if (this.#isStopped) throw new DialError(id, 'stopped', 'the BLE central is stopped');
    const timeoutMs = options.timeoutMs ?? DEFAULT_BLE_CONNECT_TIMEOUT_MS;
    const requestedMtu = options.mtu ?? DEFAULT_REQUESTED_MTU;
    await this.#dropStrayConnection(id);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.#noble.cancelConnect(id);
        reject(
          new DialError(id, 'timeout', `no BLE link after ${timeoutMs} ms`, {
            cause: new TimeoutError('BLE connect', timeoutMs),
          }),
        );
      }, timeoutMs);
    });
    this.#connecting++;
    try {
      return await Promise.race([this.#connect(id, requestedMtu), timeout]);
    } catch (error) {
      if (error instanceof DialError) throw error;
      throw new DialError(id, 'unreachable', String(error instanceof Error ? error.message : error), {
        cause: error,
      });
    } finally {
      this.#connecting--;
      clearTimeout(timer);
      // noble stopped the scan to connect.
      if (this.#isScanning && !this.#isStopped) {
        this.#noble.startScanningAsync([NEARMESH_SERVICE_UUID_HEX], false).catch((error: unknown) => {
          this.emit('warning', error instanceof Error ? error : new Error(String(error)));
        });
      }
    }
  }

  /**
   * A connection that landed after its attempt timed out (the cancel lost the race) is adopted by noble as
   * connected but belongs to no pipe: it holds a controller slot and makes every later connect fail with
   * "already connected". Disconnect it first.
   */
  async #dropStrayConnection(id: string): Promise<void> {
    const peripheral = this.#heard.get(id);
    if (peripheral?.state !== 'connected') return;
    if ([...this.#pipes].some((pipe) => pipe.peripheral === peripheral)) return;
    this.emit('warning', new BleDisconnectedError(peripheral.address, 'dropping a stray connection'));
    await peripheral.disconnectAsync().catch(() => undefined);
  }

  async #connect(id: string, requestedMtu: number): Promise<CentralPipe> {
    // `mtu` is read by noble's HCI bindings from the connect parameters; its typings omit it.
    const parameters: ConnectOptions & { mtu: number } = { mtu: requestedMtu };
    const peripheral = await this.#noble.connectAsync(id, parameters);
    const mtuSeen = new Promise<number>((resolve) => {
      if (typeof peripheral.mtu === 'number') resolve(peripheral.mtu);
      peripheral.once('mtu', (mtu: number) => resolve(mtu));
      setTimeout(() => resolve(peripheral.mtu ?? DEFAULT_ATT_MTU), MTU_EXCHANGE_WAIT_MS).unref();
    });
    try {
      const attMtu = await mtuSeen;
      if (!Number.isInteger(attMtu) || attMtu < DEFAULT_ATT_MTU) throw new Error(`bad ATT MTU ${attMtu}`);
      const { characteristics } = await peripheral.discoverSomeServicesAndCharacteristicsAsync(
        [NEARMESH_SERVICE_UUID_HEX],
        [RX_CHARACTERISTIC_UUID_HEX, TX_CHARACTERISTIC_UUID_HEX],
      );
      const find = (uuid: string): Characteristic | undefined => characteristics.find((c) => c.uuid === uuid);
      const rx = find(RX_CHARACTERISTIC_UUID_HEX);
      const tx = find(TX_CHARACTERISTIC_UUID_HEX);
      if (rx === undefined || tx === undefined) throw new Error('not a nearmesh GATT service (no RX/TX)');
      const pipe = new NoblePipe(peripheral, rx, attMtu, this.#backlog);
      tx.on('data', (data: Buffer) => pipe.deliver(data));
      await tx.subscribeAsync();
      this.#pipes.add(pipe);
      pipe.onClosed(() => this.#pipes.delete(pipe));
      return pipe;
    } catch (error) {
      await peripheral.disconnectAsync().catch(() => undefined);
      throw error;
    }
  }

  #onDiscover(peripheral: Peripheral): void {
    const { advertisement } = peripheral;
    if (!(advertisement.serviceUuids ?? []).some(isNearmeshServiceUuid)) return;
    if (!(advertisement.manufacturerData instanceof Uint8Array)) return;
    // The hint's second half is in the scan response, which noble gives as service data.
    const serviceData = (advertisement.serviceData ?? []).find((entry) => isNearmeshServiceUuid(entry.uuid));
    const decoded = decodeAdvertisementParts(advertisement.manufacturerData, serviceData?.data);
    if (decoded instanceof AdvertisementError) {
      // No scan response yet is normal for a moment; anything else is said once an hour per advertiser.
      if (decoded.reason !== 'incomplete' && this.#warned.allow(peripheral.address, Date.now())) {
        this.emit(
          'warning',
          decoded.reason === 'older-version'
            ? new OlderAgentError(peripheral.address, decoded.version ?? 0)
            : decoded,
        );
      }
      return;
    }
    // Kept most recently heard last: advertisers that rotate their address leave old entries behind.
    setBounded(this.#heard, peripheral.id, peripheral, MAX_PERIPHERALS_KEPT);
    this.emit('discover', {
      id: peripheral.id,
      address: peripheral.address,
      rssi: peripheral.rssi,
      advertisement: decoded,
    });
  }
}

/** One connection: fragments out as RX writes without response, in as TX notifications. */
class NoblePipe implements CentralPipe {
  readonly remoteAddress: string;
  readonly maxFragmentBytes: number;
  readonly #inbox = new PipeInbox();
  #closeListeners: Array<(error: Error | undefined) => void> = [];
  #isClosing = false;
  #isClosed = false;

  constructor(
    readonly peripheral: Peripheral,
    readonly rx: Characteristic,
    readonly attMtu: number,
    readonly backlog: AclBacklog | undefined,
  ) {
    this.remoteAddress = peripheral.address || peripheral.id;
    this.maxFragmentBytes = attMtu - ATT_HEADER_BYTES;
    peripheral.once('disconnect', (reason) => {
      const isOrderly = typeof reason === 'number' && ORDERLY_DISCONNECT_REASONS.has(reason);
      this.#closed(isOrderly ? undefined : new BleDisconnectedError(this.remoteAddress, `reason ${reason}`));
    });
  }

  write(fragment: Uint8Array): Promise<void> | undefined {
    if (this.#isClosing) return Promise.reject(new BleDisconnectedError(this.remoteAddress, 'closed'));
    const value = Buffer.from(fragment.buffer, fragment.byteOffset, fragment.byteLength);
    // Resolves once noble has passed it to its HCI queue (not when sent): waiting for it keeps noble's own
    // command queue empty, and the backlog then paces us to what the controller takes.
    return this.rx.writeAsync(value, true).then(() => {
      const backlog = this.backlog;
      if (backlog !== undefined && backlog.packets() >= BACKLOG_HIGH_PACKETS) {
        return backlog.waitAtMost(BACKLOG_LOW_PACKETS, BACKLOG_MAX_WAIT_MS);
      }
      return undefined;
    });
  }

  onFragment(listener: (fragment: Uint8Array) => void): void {
    this.#inbox.setListener(listener);
  }

  onClose(listener: (error: Error | undefined) => void): void {
    this.#closeListeners.push(listener);
  }

  onClosed(listener: () => void): void {
    this.#closeListeners.push(listener);
  }

  close(): void {
    if (this.#isClosing) return;
    this.#isClosing = true;
    // A disconnect overtakes queued data (HCI commands do not wait behind ACL packets): let the link's last
    // fragments reach the controller first, as FrameLink.close() promises.
    const flushed = this.backlog?.waitAtMost(0, CLOSE_FLUSH_MAX_MS) ?? Promise.resolve();
    void flushed.then(() => {
      try {
        this.peripheral.disconnectAsync().catch(() => undefined);
      } catch {
        // The adapter is already gone (noble stopped, pty unplugged): the timer below still closes the pipe.
      }
      // Our own close is orderly whatever reason the controller later reports.
      setTimeout(() => this.#closed(undefined), DISCONNECT_CONFIRM_MS).unref();
    });
  }

  deliver(fragment: Uint8Array): void {
    if (!this.#isClosed) this.#inbox.deliver(fragment);
  }

  #closed(error: Error | undefined): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    for (const listener of this.#closeListeners.splice(0)) listener(this.#isClosing ? undefined : error);
  }
}
