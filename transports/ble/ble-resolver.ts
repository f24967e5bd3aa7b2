// The BLE resolver: opens the discovery hint of what the central hears (only agents of our mesh open), turns
// them into dial candidates for the link manager, rescans so that changes (a peer that stops or starts
// accepting links, a peer that left) are heard, and remembers each agent's last RSSI for the peer table.
import { TypedEmitter } from '../../agent/core/events.js';
import { openHint } from '../discovery-hint.js';
import type { PeerCandidate, Resolver, ResolverEvents } from '../resolver.js';
import { BLE_HINT_LAYOUT } from './advertisement.js';
import type { DiscoveredPeripheral } from './central.js';

/** HCI's "RSSI not available" (the emulator always reports it). */
export const RSSI_UNAVAILABLE = 127;
/**
 * How often the scan restarts. Scanners filter duplicates per scan, so a restart is the only way to hear an
 * advertisement change or a fresh RSSI; each restart costs one scan-enable round trip.
 */
export const DEFAULT_RESCAN_INTERVAL_MS = 10_000;
/**
 * Unheard this long (three rescans), a peer is reported lost: dialling it would only block the central. Measured
 * in scanning time: stretches in which a duty-cycled scan was paused (scan-duty.ts) do not count.
 */
export const DEFAULT_FORGET_AFTER_MS = 3 * DEFAULT_RESCAN_INTERVAL_MS + 1_000;
/** Inviting advertisers remembered at once (more is a flood, not a room of devices). */
const MAX_INVITERS = 64;

export interface BlePeerCandidate extends PeerCandidate {
  medium: 'ble';
  /** The peer id its hint opened to: a claim until the handshake proves it. */
  peerId: string;
  rssi: number;
}

/**
 * Who dials when two agents hear each other: the one with the smaller peer id (the rule of PROTOCOL.md §11), so a
 * pair gets one link, not two racing ones.
 */
export function isBleDialer(ownPeerId: string, remotePeerId: string): boolean {
  return ownPeerId < remotePeerId;
}

interface Heard {
  candidate: BlePeerCandidate;
  /** Reported as found (and not since as lost). */
  isReported: boolean;
  atMs: number;
}

/** What a hearing or a sweep changed for the link manager. */
export interface AdvertiserChanges {
  found: BlePeerCandidate[];
  lost: BlePeerCandidate[];
}

/**
 * The agents of our mesh the central has heard, by noble id: pure bookkeeping, no radio. A candidate is found
 * when it is heard accepting links and we are its dialler, and lost when it stops accepting or goes unheard.
 * An agent that rotates its address is a new entry at each address; the old one goes unheard and is lost.
 */
export class AdvertiserTable {
  readonly #heard = new Map<string, Heard>();
  /** Advertisers showing an open invitation, whatever their mesh, by address: when last heard. */
  readonly #inviters = new Map<string, number>();
  /** Advertisements heard whose hint opened under none of our keys: other meshes (or anyone's noise). */
  ignoredCount = 0;

  constructor(
    readonly peerId: string,
    readonly meshKeys: () => readonly Uint8Array[],
    readonly forgetAfterMs: number = DEFAULT_FORGET_AFTER_MS,
  ) {}

  hear(peripheral: DiscoveredPeripheral, nowMs: number): AdvertiserChanges {
    const changes: AdvertiserChanges = { found: [], lost: [] };
    const { advertisement } = peripheral;
    if (advertisement.isInviting === true) {
      if (this.#inviters.has(peripheral.id) || this.#inviters.size < MAX_INVITERS)
        this.#inviters.set(peripheral.id, nowMs);
    } else this.#inviters.delete(peripheral.id);
    const opened = openHint(this.meshKeys, advertisement.hint, BLE_HINT_LAYOUT);
    if (opened === undefined) {
      this.ignoredCount++;
      return changes;
    }
    if (opened.peerId === this.peerId) return changes; // our own peripheral
    const previous = this.#heard.get(peripheral.id);
    const candidate: BlePeerCandidate = {
      medium: 'ble',
      address: peripheral.id,
      peerId: opened.peerId,
      rssi: peripheral.rssi,
      source: 'ble',
    };
    const wanted = advertisement.isAcceptingLinks && isBleDialer(this.peerId, opened.peerId);
    if (wanted && previous?.isReported !== true) changes.found.push(candidate);
    if (!wanted && previous?.isReported === true) changes.lost.push(previous.candidate);
    this.#heard.set(peripheral.id, { candidate, isReported: wanted, atMs: nowMs });
    return changes;
  }

  /** Forgets what went unheard for forgetAfterMs; the reported ones come back as lost. */
  sweep(nowMs: number): BlePeerCandidate[] {
    for (const [id, atMs] of this.#inviters)
      if (nowMs - atMs >= this.forgetAfterMs) this.#inviters.delete(id);
    const lost: BlePeerCandidate[] = [];
    for (const [id, heard] of this.#heard) {
      if (nowMs - heard.atMs < this.forgetAfterMs) continue;
      this.#heard.delete(id);
      if (heard.isReported) lost.push(heard.candidate);
    }
    return lost;
  }

  /** Forgets everyone heard (the resolver stopped): after a restart each is found afresh. */
  forgetAll(): void {
    this.#heard.clear();
    this.#inviters.clear();
  }

  /** Addresses of advertisers heard showing an open invitation (a joining device dials them). */
  inviters(): string[] {
    return [...this.#inviters.keys()];
  }

  /** The last RSSI heard from the agent with this peer id, if the radio gave one. */
  rssiOf(peerId: string): number | undefined {
    // An agent that rotated its address is here twice until the old address is forgotten: take the newer.
    let latest: Heard | undefined;
    for (const heard of this.#heard.values()) {
      const { candidate } = heard;
      if (candidate.rssi === RSSI_UNAVAILABLE || candidate.peerId !== peerId) continue;
      if (latest === undefined || heard.atMs >= latest.atMs) latest = heard;
    }
    return latest?.candidate.rssi;
  }
}

/** The part of BleTransport the resolver uses (tests give it a fake). */
export interface ScanningTransport {
  readonly hasCentral: boolean;
  startScanning(): Promise<void>;
  stopScanning(): Promise<void>;
  rescan(): Promise<void>;
  /** Total time a duty-cycled scan has been paused (BleTransport.scanPausedMs). */
  scanPausedMs(): number;
  on(event: 'discover', listener: (peripheral: DiscoveredPeripheral) => void): unknown;
  off(event: 'discover', listener: (peripheral: DiscoveredPeripheral) => void): unknown;
}

export interface BleResolverOptions {
  peerId: string;
  /** The accepted mesh keys, the current one first (hints sealed under any of them open). */
  meshKeys: () => readonly Uint8Array[];
  rescanIntervalMs?: number;
  forgetAfterMs?: number;
  /** Wall-clock milliseconds; default Date.now. */
  now?: () => number;
}

/**
 * Reports agents of our mesh that the central hears and that we should dial (isBleDialer); agents of other
 * meshes and our own peripheral are never reported. Start it after the transport.
 */
export class BleResolver extends TypedEmitter<ResolverEvents> implements Resolver {
  readonly name = 'ble';
  readonly #transport: ScanningTransport;
  readonly #table: AdvertiserTable;
  readonly #rescanIntervalMs: number;
  readonly #now: () => number;
  readonly #onDiscover = (peripheral: DiscoveredPeripheral): void =>
    this.#report(this.#table.hear(peripheral, this.#scanningNow()));
  #isStarted = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(transport: ScanningTransport, options: BleResolverOptions) {
    super();
    this.#transport = transport;
    this.#table = new AdvertiserTable(options.peerId, options.meshKeys, options.forgetAfterMs);
    this.#rescanIntervalMs = options.rescanIntervalMs ?? DEFAULT_RESCAN_INTERVAL_MS;
    this.#now = options.now ?? Date.now;
  }

  async start(): Promise<void> {
    const transport = this.#transport;
    if (!transport.hasCentral) return; // a peripheral-only agent hears nobody
    this.#isStarted = true;
    transport.on('discover', this.#onDiscover);
    await transport.startScanning();
    this.#timer = setInterval(() => this.#rescan(), this.#rescanIntervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    if (!this.#isStarted) return;
    this.#isStarted = false;
    this.#transport.off('discover', this.#onDiscover);
    this.#table.forgetAll();
    await this.#transport.stopScanning().catch(() => undefined);
  }

  /** Advertisements heard whose hint none of our keys opens: agents of other meshes, counted, never reported. */
  get ignoredCount(): number {
    return this.#table.ignoredCount;
  }

  /** The last RSSI (dBm) heard from this peer's advertisement, when the radio reports one. */
  rssiOf(peerId: string): number | undefined {
    return this.#table.rssiOf(peerId);
  }

  /** BLE addresses of agents heard showing an open invitation, for a device joining with a code. */
  inviterAddresses(): string[] {
    return this.#table.inviters();
  }

  /**
   * The table's clock: wall time minus the time the duty cycle kept the scan paused, so an advertiser is lost
   * after forgetAfterMs of listening without hearing it, however much of the wall time the scan was paused.
   */
  #scanningNow(): number {
    return this.#now() - this.#transport.scanPausedMs();
  }

  #rescan(): void {
    this.#report({ found: [], lost: this.#table.sweep(this.#scanningNow()) });
    this.#transport.rescan().catch((error: unknown) => {
      this.emit('warning', error instanceof Error ? error : new Error(String(error)));
    });
  }

  #report(changes: AdvertiserChanges): void {
    for (const candidate of changes.lost) this.emit('lost', candidate);
    for (const candidate of changes.found) this.emit('found', candidate);
  }
}
