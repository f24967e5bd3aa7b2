// The BLE medium: a peripheral (bleno) that accepts links and a central (noble) that dials them, each on its
// own adapter, both carrying GattLinks, within a limit on simultaneous links (ble.max_links). The peripheral's
// discovery hint and address rotate, so that what it broadcasts names no one to outsiders.
import type { BleAdapter } from '../../agent/core/ble-adapter.js';
import { NearmeshError } from '../../agent/core/errors.js';
import { TypedEmitter } from '../../agent/core/events.js';
import { sealHint } from '../discovery-hint.js';
import { DialError } from '../errors.js';
import type { DialOptions, FrameLink, Medium, Transport, TransportEvents } from '../transport.js';
import { type AdapterChange, AdapterKeeper } from './adapter-keeper.js';
import { BLE_HINT_LAYOUT, type EncodedAdvertisement, encodeAdvertisement } from './advertisement.js';
import { BleCentral, type CentralPipe, type DiscoveredPeripheral } from './central.js';
import { DEFAULT_BLE_MAX_FRAME_BYTES } from './fragmentation.js';
import { GattLink } from './gatt-link.js';
import { BlePeripheral } from './peripheral.js';
import { randomPrivateAddress } from './private-address.js';
import { ADAPTER_REPLY_MS, isSameAdapter, withinMs } from './radio.js';
import { ScanDutyScheduler } from './scan-duty.js';

export interface BleTransportOptions {
  /** Adapter for the peripheral role (advertise, accept); none: this agent only dials. */
  peripheral?: BleAdapter;
  /** Adapter for the central role (scan, dial); none: this agent only accepts. */
  central?: BleAdapter;
  peerId: string;
  /** The accepted mesh keys, the current one first: the hint is sealed under the current one. */
  meshKeys: () => readonly Uint8Array[];
  /** Advertised as a flag, so peers know a bandwidth upgrade may be offered. */
  isWifiAvailable?: boolean;
  /** Whether an invitation is open (advertised as a flag); rotateDiscoveryHint() when it changes. */
  isInviting?: () => boolean;
  maxFrameBytes?: number;
  /** ATT MTU the central asks for (default 256); 23 holds links at the default. */
  requestedMtu?: number;
  connectTimeoutMs?: number;
  powerOnTimeoutMs?: number;
  /** Links (both roles together) beyond which dials fail and new centrals are turned away; default 4. */
  maxLinks?: number;
  /** Reopening a lost adapter: first retry after about initialRetryMs (1 s), doubling to maxRetryMs (30 s). */
  adapterRetry?: { initialRetryMs?: number; maxRetryMs?: number };
  /** The scan duty cycle's period (scan-duty.ts); default 10 s, the resolver's rescan interval. */
  scanPeriodMs?: number;
  /** How often the hint and the advertising address change; default BLE_HINT_ROTATION_MS. */
  hintRotationMs?: number;
}

const DEFAULT_MAX_LINKS = 4;
/**
 * How long one hint and one address are advertised: what an outsider can follow a device for. 15 minutes, as
 * phones rotate their private addresses; each change costs members one rescan to hear it.
 */
export const BLE_HINT_ROTATION_MS = 15 * 60_000;

/** A central connected while this agent already had ble.max_links links: it was turned away. */
export class BleLinkLimitError extends NearmeshError {
  constructor(
    readonly address: string,
    readonly maxLinks: number,
  ) {
    super(
      'ble-link-limit',
      `turned away BLE central ${address}: already ${maxLinks} BLE links (ble.max_links)`,
    );
  }
}

export interface BleTransportEvents extends TransportEvents {
  /** The central heard a nearmesh advertisement (whichever central instance is current). */
  discover: (peripheral: DiscoveredPeripheral) => void;
  /** An adapter went away, or came back after being reopened. */
  adapter: (change: AdapterChange) => void;
}

export class BleTransport extends TypedEmitter<BleTransportEvents> implements Transport {
  readonly medium: Medium = 'ble';
  readonly maxFrameBytes: number;
  readonly #options: BleTransportOptions;
  readonly #links = new Set<GattLink>();
  #dialsInFlight = 0;
  #isAdvertisingAccepting = true;
  /** Between start() and stopAccepting(): the peripheral advertises and takes the centrals that connect. */
  #isAccepting = false;
  #peripheralKeeper: AdapterKeeper<BlePeripheral> | undefined;
  #centralKeeper: AdapterKeeper<BleCentral> | undefined;
  /** Whether the resolver wants the central scanning: a reopened central resumes it. */
  #isScanning = false;
  #isStopped = false;
  #starting: Promise<void> | undefined;
  /** Runs the wanted scan continuously or duty-cycled (setScanDuty), on whichever central is current. */
  readonly #scanDuty: ScanDutyScheduler;
  /** What the peripheral advertises now (BLE_HINT_LAYOUT), and the random address it advertises from. */
  #hint: Uint8Array | undefined;
  #randomAddress: Uint8Array | undefined;
  #rotationTimer: NodeJS.Timeout | undefined;

  constructor(options: BleTransportOptions) {
    super();
    this.#options = options;
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_BLE_MAX_FRAME_BYTES;
    this.#scanDuty = new ScanDutyScheduler({
      scanner: {
        resume: async () => this.#central?.startScanning(),
        pause: async () => this.#central?.stopScanning(),
      },
      ...(options.scanPeriodMs !== undefined && { periodMs: options.scanPeriodMs }),
      onError: (error) => this.#warn(error),
    });
  }

  get #peripheral(): BlePeripheral | undefined {
    return this.#peripheralKeeper?.current;
  }

  get #central(): BleCentral | undefined {
    return this.#centralKeeper?.current;
  }

  /** Whether this transport has a central role at all (a peripheral-only agent hears nobody). */
  get hasCentral(): boolean {
    return this.#options.central !== undefined;
  }

  /** The peripheral controller's own address (never advertised while it takes a random one). */
  get peripheralAddress(): string | undefined {
    return this.#peripheral?.address;
  }

  /** The address scanners see the peripheral at now. */
  get advertisingAddress(): string | undefined {
    return this.#peripheral?.advertisingAddress;
  }

  /**
   * Advertises a fresh hint (new nonce, current mesh key) from a fresh random address. Runs every
   * hintRotationMs by itself; call it when the mesh keys change, so the hint is sealed under the new current key.
   */
  async rotateDiscoveryHint(): Promise<void> {
    const hint = this.#sealHint();
    const randomAddress = randomPrivateAddress();
    if (this.#peripheral === undefined || !this.#isAccepting) {
      // Nothing advertises now: the next peripheral opened starts with these.
      this.#useHint(hint, randomAddress);
      return;
    }
    // A controller that also scans for the central role refuses a new address while it scans: the duty cycle
    // holds the scan (so neither a period start nor a reopened central restarts it) until the address is in
    // use. A stop that is never confirmed (the scan was already paused for a connect) must not hold the
    // rotation up.
    const holdsScan = this.#isShared && this.#centralKeeper !== undefined;
    if (holdsScan) await withinMs(this.#scanDuty.suspend(), ADAPTER_REPLY_MS);
    try {
      const peripheral = this.#peripheral;
      if (!this.#isAccepting) return;
      // The new hint never goes out from the old address, nor the old hint from the new one: the fields change
      // in the same turn as the change of both is queued (the peripheral applies advertise() calls in order),
      // so every readvertise queued before it carries the old pair and every one after it the new pair.
      this.#useHint(hint, randomAddress);
      await peripheral?.advertise(this.#advertisement(this.#isAdvertisingAccepting), randomAddress);
    } finally {
      // Through the duty cycle: not during a paused stretch, nor once stopped.
      if (holdsScan) await this.#scanDuty.resume();
    }
  }

  /**
   * Scans for nearmesh advertisements ('discover' events) until stopScanning(), across adapter reopens,
   * with the scan duty in force (setScanDuty).
   */
  async startScanning(): Promise<void> {
    this.#isScanning = true;
    await this.#scanDuty.start();
  }

  async stopScanning(): Promise<void> {
    this.#isScanning = false;
    await this.#scanDuty.stop();
  }

  /**
   * Restarts the scan so every advertiser is reported again (see BleCentral.rescan). Not while duty-cycled:
   * every period already starts with a fresh scan, and a restart would cut into its scan window.
   */
  async rescan(): Promise<void> {
    // Nor while the scan is held for an address change (isScanWindow is then false).
    if (this.#scanDuty.duty < 1 || !this.#scanDuty.isScanWindow) return;
    await this.#central?.rescan();
  }

  /**
   * The share of time to scan (0..1, raised to at least MIN_SCAN_DUTY; 1, the default, is continuous): below
   * 1 the scan runs for duty × 10 s and pauses for the rest, giving airtime to a busy Wi-Fi on a shared chip.
   * Dialling and advertising are not affected. Returns whether the duty changed.
   */
  setScanDuty(duty: number): boolean {
    return this.#scanDuty.setDuty(duty);
  }

  /** The scan duty in force (1: continuous). */
  get scanDuty(): number {
    return this.#scanDuty.duty;
  }

  /**
   * How long the duty cycle has kept the scan paused, in total (grows while paused, never decreases). The
   * resolver measures "unheard" in scanning time (wall time minus this), not to lose what it did not listen for.
   */
  scanPausedMs(): number {
    return this.#scanDuty.pausedMs();
  }

  /** Loads the libraries, powers both adapters on and starts advertising; rejects with BleUnavailableError. */
  async start(): Promise<void> {
    this.#isStopped = false;
    const wasAccepting = this.#isAccepting;
    this.#isAccepting = true;
    // Idempotent: the agent starts it early to learn whether BLE works, the link manager starts it again.
    // Started but not accepting: advertising again, with a fresh hint and address (a pair never mixed).
    if (this.#starting !== undefined && !wasAccepting)
      this.rotateDiscoveryHint().catch((error: unknown) => this.#warn(error));
    this.#starting ??= this.#start();
    return this.#starting;
  }

  /** Stops advertising, so no central connects any more; links made stay, dials still work. */
  async stopAccepting(): Promise<void> {
    if (!this.#isAccepting) return;
    this.#isAccepting = false;
    await this.#starting?.catch(() => undefined);
    await this.#peripheral?.stopAdvertising().catch((error: unknown) => this.#warn(error));
  }

  async #start(): Promise<void> {
    const { peripheral, central } = this.#options;
    this.#useHint(this.#sealHint(), randomPrivateAddress());
    const openPeripheral = async () =>
      peripheral === undefined ? undefined : this.#openPeripheral(peripheral);
    const openCentral = async () => (central === undefined ? undefined : this.#openCentral(central));
    // One controller for both roles: the central first, so the controller is reset once, before anyone
    // advertises (shared-hci.ts); two controllers open side by side.
    const [openedCentral, openedPeripheral] = this.#isShared
      ? [await settle(openCentral()), await settle(openPeripheral())]
      : await Promise.allSettled([openCentral(), openPeripheral()]);
    if (openedPeripheral.status === 'rejected' || openedCentral.status === 'rejected') {
      this.#starting = undefined;
      if (openedPeripheral.status === 'fulfilled') await openedPeripheral.value?.stop();
      if (openedCentral.status === 'fulfilled') await openedCentral.value?.stop();
      throw openedPeripheral.status === 'rejected'
        ? openedPeripheral.reason
        : (openedCentral as PromiseRejectedResult).reason;
    }
    const onChange = (change: AdapterChange): void => {
      this.emit('adapter', change);
    };
    if (peripheral !== undefined && openedPeripheral.value !== undefined) {
      this.#peripheralKeeper = new AdapterKeeper({
        role: 'peripheral',
        adapter: peripheral,
        open: () => this.#openPeripheral(peripheral),
        onReopened: () => undefined,
        onChange,
        ...this.#options.adapterRetry,
      });
      this.#peripheralKeeper.adopt(openedPeripheral.value);
    }
    if (central !== undefined && openedCentral.value !== undefined) {
      this.#centralKeeper = new AdapterKeeper({
        role: 'central',
        adapter: central,
        open: () => this.#openCentral(central),
        onReopened: (reopened) => {
          // In a paused stretch of the duty cycle, the next period starts the scan on it.
          if (this.#isScanning && this.#scanDuty.isScanWindow) {
            reopened.startScanning().catch((error: unknown) => this.#warn(error));
          }
        },
        onChange,
        ...this.#options.adapterRetry,
      });
      this.#centralKeeper.adopt(openedCentral.value);
    }
    if (this.#peripheralKeeper !== undefined) {
      const rotationMs = this.#options.hintRotationMs ?? BLE_HINT_ROTATION_MS;
      this.#rotationTimer = setInterval(() => {
        this.rotateDiscoveryHint().catch((error: unknown) => this.#warn(error));
      }, rotationMs);
      this.#rotationTimer.unref();
    }
  }

  async stop(): Promise<void> {
    this.#isStopped = true;
    // No central is taken from here on; the peripheral's own stop below ends its advertising (once).
    this.#isAccepting = false;
    clearInterval(this.#rotationTimer);
    // Ends the duty cycle's timers (stopping the central stops its scan); the resolver's wish to scan stays.
    this.#scanDuty.halt();
    const closed = [...this.#links].map(
      (link) => new Promise<void>((resolve) => link.once('close', () => resolve()).close()),
    );
    await Promise.all(closed);
    await Promise.all([this.#peripheralKeeper?.stop(), this.#centralKeeper?.stop()]);
    this.#peripheralKeeper = undefined;
    this.#centralKeeper = undefined;
    this.#starting = undefined;
    this.#isAdvertisingAccepting = true;
  }

  /** Dials a peripheral by the id the BLE resolver reported (noble's id; the BLE address without colons). */
  async dial(address: string, options: DialOptions = {}): Promise<FrameLink> {
    const central = this.#central;
    if (this.#isStopped) throw new DialError(address, 'stopped', 'the transport is stopped');
    if (central === undefined) throw new DialError(address, 'unreachable', 'no BLE central adapter');
    if (options.signal?.aborted) {
      throw new DialError(address, 'aborted', 'aborted', { cause: options.signal.reason });
    }
    if (this.#isFull()) {
      throw new DialError(
        address,
        'refused',
        `this agent already has ${this.#maxLinks} BLE links (ble.max_links)`,
      );
    }
    // A dial holds its slot from the start: concurrent dials must not overshoot the limit together.
    this.#dialsInFlight++;
    this.#linkCountChanged();
    try {
      const connecting = central.connect(address, {
        ...(this.#options.requestedMtu !== undefined && { mtu: this.#options.requestedMtu }),
        ...((options.timeoutMs ?? this.#options.connectTimeoutMs) !== undefined && {
          timeoutMs: options.timeoutMs ?? this.#options.connectTimeoutMs,
        }),
      });
      const pipe = await abortable(connecting, address, options.signal);
      if (this.#isStopped) {
        pipe.close();
        throw new DialError(address, 'stopped', 'the transport stopped');
      }
      const link = this.#adopt(new GattLink(pipe, { isInitiator: true, maxFrameBytes: this.maxFrameBytes }));
      // Some controllers (BlueZ's emulated one among them) stop advertising when they initiate a
      // connection; on a shared controller that would hide this agent from every other central.
      if (this.#isShared) this.#readvertise();
      return link;
    } finally {
      this.#dialsInFlight--;
      this.#linkCountChanged();
    }
  }

  async #openPeripheral(adapter: BleAdapter): Promise<BlePeripheral> {
    this.#isAdvertisingAccepting = !this.#isFull();
    const peripheral = await BlePeripheral.open({
      adapter,
      isShared: this.#isShared,
      advertisement: this.#advertisement(this.#isAdvertisingAccepting),
      ...(this.#randomAddress !== undefined && { randomAddress: this.#randomAddress }),
      ...(this.#options.powerOnTimeoutMs !== undefined && {
        powerOnTimeoutMs: this.#options.powerOnTimeoutMs,
      }),
    });
    peripheral.on('warning', (error) => this.emit('warning', error));
    // Opened (or reopened after a loss) once stopAccepting() ran: it must not advertise.
    if (!this.#isAccepting) await peripheral.stopAdvertising();
    peripheral.on('pipe', (pipe) => {
      if (!this.#isAccepting) {
        pipe.close();
        return;
      }
      if (this.#isFull()) {
        this.emit('warning', new BleLinkLimitError(pipe.remoteAddress, this.#maxLinks));
        pipe.close();
        return;
      }
      this.emit(
        'link',
        this.#adopt(new GattLink(pipe, { isInitiator: false, maxFrameBytes: this.maxFrameBytes })),
      );
    });
    return peripheral;
  }

  async #openCentral(adapter: BleAdapter): Promise<BleCentral> {
    const central = await BleCentral.open(adapter, this.#options.powerOnTimeoutMs, this.#isShared);
    central.on('warning', (error) => this.emit('warning', error));
    central.on('discover', (peripheral) => this.emit('discover', peripheral));
    return central;
  }

  #warn(error: unknown): void {
    this.emit('warning', error instanceof Error ? error : new Error(String(error)));
  }

  /** Both roles on one adapter: one multi-role controller. */
  get #isShared(): boolean {
    const { peripheral, central } = this.#options;
    return peripheral !== undefined && central !== undefined && isSameAdapter(peripheral, central);
  }

  get #maxLinks(): number {
    return this.#options.maxLinks ?? DEFAULT_MAX_LINKS;
  }

  #isFull(): boolean {
    return this.#links.size + this.#dialsInFlight >= this.#maxLinks;
  }

  #sealHint(): Uint8Array {
    return sealHint(this.#options.meshKeys, this.#options.peerId, BLE_HINT_LAYOUT);
  }

  /** What the peripheral advertises from now on (and a reopened one starts with): never one without the other. */
  #useHint(hint: Uint8Array, randomAddress: Uint8Array): void {
    this.#hint = hint;
    this.#randomAddress = randomAddress;
  }

  #advertisement(isAcceptingLinks: boolean): EncodedAdvertisement {
    if (this.#hint === undefined) throw new Error('BLE transport: no hint before start');
    return encodeAdvertisement({
      hint: this.#hint,
      isWifiAvailable: this.#options.isWifiAvailable ?? false,
      isAcceptingLinks,
      isInviting: this.#options.isInviting?.() ?? false,
    });
  }

  /** Keeps the advertised "accepting links" flag true to the limit, so full agents are not dialled in vain. */
  #linkCountChanged(): void {
    const isAccepting = !this.#isFull();
    const peripheral = this.#peripheral;
    if (isAccepting === this.#isAdvertisingAccepting || peripheral === undefined || !this.#isAccepting)
      return;
    this.#isAdvertisingAccepting = isAccepting;
    peripheral.advertise(this.#advertisement(isAccepting)).catch((error: unknown) => this.#warn(error));
  }

  #readvertise(): void {
    if (!this.#isAccepting) return;
    this.#isAdvertisingAccepting = !this.#isFull();
    this.#peripheral
      ?.advertise(this.#advertisement(this.#isAdvertisingAccepting))
      .catch((error: unknown) => this.#warn(error));
  }

  #adopt(link: GattLink): GattLink {
    this.#links.add(link);
    this.#linkCountChanged();
    link.once('close', () => {
      this.#links.delete(link);
      this.#linkCountChanged();
    });
    return link;
  }
}

async function settle<T>(promise: Promise<T>): Promise<PromiseSettledResult<T>> {
  return (await Promise.allSettled([promise]))[0] as PromiseSettledResult<T>;
}

/** The dial, or a DialError('aborted') when the signal fires first; a connection that lands late is closed. */
async function abortable(
  connecting: Promise<CentralPipe>,
  address: string,
  signal?: AbortSignal,
): Promise<CentralPipe> {
  if (signal === undefined) return connecting;
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => {
      connecting.then((late) => late.close()).catch(() => undefined);
      reject(new DialError(address, 'aborted', 'aborted', { cause: signal.reason }));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([connecting, aborted]);
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
  }
}
