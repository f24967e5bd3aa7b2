// The BLE medium: a peripheral (bleno) that accepts links and a central (noble) that dials them, each on its
// own adapter, both carrying GattLinks; plus the BLE resolver, which turns what the central hears into candidates.
import type { BleAdapter } from '../../agent/config/adapter.js';
import { TypedEmitter } from '../../agent/events.js';
import { PROTOCOL_VERSION } from '../../agent/protocol/envelope.js';
import { DialError } from '../errors.js';
import type { PeerCandidate, Resolver, ResolverEvents } from '../resolver.js';
import type { DialOptions, FrameLink, Medium, Transport, TransportEvents } from '../transport.js';
import {
  ADVERTISEMENT_VERSION,
  encodeAdvertisement,
  encodeScanResponse,
  matchesMesh,
  shortPeerIdMatches,
} from './advertisement.js';
import { BleCentral, type CentralPipe, type DiscoveredPeripheral } from './central.js';
import { DEFAULT_BLE_MAX_FRAME_BYTES } from './fragmentation.js';
import { GattLink } from './gatt-link.js';
import { encodeInfo } from './gatt-service.js';
import { BlePeripheral } from './peripheral.js';

export interface BleTransportOptions {
  /** Adapter for the peripheral role (advertise, accept); none: this agent only dials. */
  peripheral?: BleAdapter;
  /** Adapter for the central role (scan, dial); none: this agent only accepts. */
  central?: BleAdapter;
  peerId: string;
  name: string;
  meshKey: Uint8Array;
  /** Advertised as a flag, so peers know a bandwidth upgrade may be offered. */
  isWifiAvailable?: boolean;
  maxFrameBytes?: number;
  /** ATT MTU the central asks for (default 256); 23 holds links at the default. */
  requestedMtu?: number;
  connectTimeoutMs?: number;
  powerOnTimeoutMs?: number;
}

export class BleTransport extends TypedEmitter<TransportEvents> implements Transport {
  readonly medium: Medium = 'ble';
  readonly maxFrameBytes: number;
  readonly #options: BleTransportOptions;
  readonly #links = new Set<GattLink>();
  #peripheral: BlePeripheral | undefined;
  #central: BleCentral | undefined;
  #isStopped = false;
  #starting: Promise<void> | undefined;

  constructor(options: BleTransportOptions) {
    super();
    this.#options = options;
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_BLE_MAX_FRAME_BYTES;
  }

  /** The central once started (the BLE resolver listens to it); undefined without a central adapter. */
  get central(): BleCentral | undefined {
    return this.#central;
  }

  get peripheralAddress(): string | undefined {
    return this.#peripheral?.address;
  }

  /** Loads the libraries, powers both adapters on and starts advertising; rejects with BleUnavailableError. */
  async start(): Promise<void> {
    this.#isStopped = false;
    // Idempotent: the agent starts it early to learn whether BLE works, the link manager starts it again.
    this.#starting ??= this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    const { peripheral, central } = this.#options;
    const [openedPeripheral, openedCentral] = await Promise.allSettled([
      peripheral === undefined ? undefined : this.#openPeripheral(peripheral),
      central === undefined ? undefined : BleCentral.open(central, this.#options.powerOnTimeoutMs),
    ]);
    if (openedPeripheral.status === 'rejected' || openedCentral.status === 'rejected') {
      this.#starting = undefined;
      if (openedPeripheral.status === 'fulfilled') await openedPeripheral.value?.stop();
      if (openedCentral.status === 'fulfilled') await openedCentral.value?.stop();
      throw openedPeripheral.status === 'rejected'
        ? openedPeripheral.reason
        : (openedCentral as PromiseRejectedResult).reason;
    }
    this.#peripheral = openedPeripheral.value;
    this.#central = openedCentral.value;
    this.#central?.on('warning', (error) => this.emit('warning', error));
  }

  async stop(): Promise<void> {
    this.#isStopped = true;
    const closed = [...this.#links].map(
      (link) => new Promise<void>((resolve) => link.once('close', () => resolve()).close()),
    );
    await Promise.all(closed);
    await Promise.all([this.#peripheral?.stop(), this.#central?.stop()]);
    this.#peripheral = undefined;
    this.#central = undefined;
    this.#starting = undefined;
  }

  /** Dials a peripheral by the id the BLE resolver reported (noble's id; the BLE address without colons). */
  async dial(address: string, options: DialOptions = {}): Promise<FrameLink> {
    const central = this.#central;
    if (this.#isStopped) throw new DialError(address, 'stopped', 'the transport is stopped');
    if (central === undefined) throw new DialError(address, 'unreachable', 'no BLE central adapter');
    if (options.signal?.aborted) {
      throw new DialError(address, 'aborted', 'aborted', { cause: options.signal.reason });
    }
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
    return this.#adopt(new GattLink(pipe, { isInitiator: true, maxFrameBytes: this.maxFrameBytes }));
  }

  async #openPeripheral(adapter: BleAdapter): Promise<BlePeripheral> {
    const { peerId, name, meshKey } = this.#options;
    const peripheral = await BlePeripheral.open({
      adapter,
      advertisement: encodeAdvertisement({
        version: ADVERTISEMENT_VERSION,
        peerId,
        meshKey,
        isWifiAvailable: this.#options.isWifiAvailable ?? false,
        isAcceptingLinks: true,
      }),
      scanResponse: encodeScanResponse(name),
      info: encodeInfo({ version: PROTOCOL_VERSION, peerId, name }),
      ...(this.#options.powerOnTimeoutMs !== undefined && {
        powerOnTimeoutMs: this.#options.powerOnTimeoutMs,
      }),
    });
    peripheral.on('warning', (error) => this.emit('warning', error));
    peripheral.on('pipe', (pipe) => {
      if (this.#isStopped) {
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

  #adopt(link: GattLink): GattLink {
    this.#links.add(link);
    link.once('close', () => this.#links.delete(link));
    return link;
  }
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

/**
 * Who dials when two agents hear each other: the one with the smaller short peer id, so a pair gets one link,
 * not two racing ones. Equal short ids (a 1 in 2^24 collision) make both dial; the link manager keeps one.
 */
export function isBleDialer(ownPeerId: string, remoteShortPeerId: string): boolean {
  return ownPeerId.slice(0, remoteShortPeerId.length) <= remoteShortPeerId;
}

export interface BlePeerCandidate extends PeerCandidate {
  medium: 'ble';
  /** The advertised leading bytes of the peer id, as hex: a hint until the handshake. */
  shortPeerId: string;
  rssi: number;
}

export interface BleResolverOptions {
  peerId: string;
  meshKey: Uint8Array;
}

/**
 * Reports agents of our mesh that the central hears and that we should dial (isBleDialer); agents of other
 * meshes and our own peripheral are never reported. Start it after the transport.
 */
export class BleResolver extends TypedEmitter<ResolverEvents> implements Resolver {
  readonly name = 'ble';
  readonly #transport: BleTransport;
  readonly #options: BleResolverOptions;
  readonly #onDiscover = (peripheral: DiscoveredPeripheral): void => this.#consider(peripheral);
  #central: BleCentral | undefined;

  constructor(transport: BleTransport, options: BleResolverOptions) {
    super();
    this.#transport = transport;
    this.#options = options;
  }

  async start(): Promise<void> {
    const central = this.#transport.central;
    if (central === undefined) return; // a peripheral-only agent hears nobody
    this.#central = central;
    central.on('discover', this.#onDiscover);
    await central.startScanning();
  }

  async stop(): Promise<void> {
    const central = this.#central;
    this.#central = undefined;
    if (central === undefined) return;
    central.off('discover', this.#onDiscover);
    await central.stopScanning().catch(() => undefined);
  }

  #consider(peripheral: DiscoveredPeripheral): void {
    const { advertisement } = peripheral;
    const { peerId, meshKey } = this.#options;
    if (!matchesMesh(advertisement, meshKey)) return;
    if (shortPeerIdMatches(advertisement.shortPeerId, peerId)) return; // our own peripheral
    if (!advertisement.isAcceptingLinks || !isBleDialer(peerId, advertisement.shortPeerId)) return;
    const candidate: BlePeerCandidate = {
      medium: 'ble',
      address: peripheral.id,
      shortPeerId: advertisement.shortPeerId,
      rssi: peripheral.rssi,
      source: this.name,
      ...(advertisement.name !== undefined && { name: advertisement.name }),
    };
    this.emit('found', candidate);
  }
}
