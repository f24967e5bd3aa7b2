// Rotating the BLE discovery hint and address (BleTransport.rotateDiscoveryHint) against fake peripheral and
// central roles on one shared controller: an outsider must never hear the new hint from the old address (or the
// old hint from the new one), and the scan held for the address change must come back only as the duty cycle
// and the transport's state allow. The radio itself is tested in test/system/ble-transport.test.ts.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { decodeAdvertisement, type EncodedAdvertisement } from '../../../../transports/ble/advertisement.js';
import { BleTransport } from '../../../../transports/ble/ble-transport.js';

const fakes = vi.hoisted(() => {
  const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

  /** What an outsider hears: each advertisement with the address it goes out from, in the order applied. */
  class FakePeripheral {
    readonly address = '00:00:00:00:00:01';
    readonly sent: { advertisement: EncodedAdvertisement; address: string }[] = [];
    /** Whether the central of the same controller was scanning at each address change (it must not be). */
    readonly scanningAtAddressChange: boolean[] = [];
    isAdvertising = true;
    /** The transport's handler of centrals that connect. */
    onPipe: ((pipe: { remoteAddress: string; close(): void }) => void) | undefined;
    #current: string | undefined;

    static async open(options: {
      advertisement: EncodedAdvertisement;
      randomAddress?: Uint8Array;
    }): Promise<FakePeripheral> {
      const peripheral = new FakePeripheral();
      if (options.randomAddress !== undefined) peripheral.#current = hex(options.randomAddress);
      peripheral.sent.push({ advertisement: options.advertisement, address: peripheral.advertisingAddress });
      state.peripherals.push(peripheral);
      return peripheral;
    }

    get advertisingAddress(): string {
      return this.#current ?? this.address;
    }

    on(event: string, listener: (pipe: { remoteAddress: string; close(): void }) => void): this {
      if (event === 'pipe') this.onPipe = listener;
      return this;
    }

    async stopAdvertising(): Promise<void> {
      this.isAdvertising = false;
    }

    /** Applied at once, in call order, as the real peripheral applies its queued changes. */
    async advertise(advertisement: EncodedAdvertisement, randomAddress?: Uint8Array): Promise<void> {
      this.isAdvertising = true;
      if (randomAddress !== undefined) {
        this.scanningAtAddressChange.push(state.centrals.at(-1)?.isScanning ?? false);
        this.#current = hex(randomAddress);
      }
      this.sent.push({ advertisement, address: this.advertisingAddress });
    }

    async stop(): Promise<void> {}
  }

  class FakeCentral {
    readonly address = '00:00:00:00:00:02';
    isScanning = false;
    readonly log: string[] = [];
    /** While set, stopScanning() is not confirmed until it settles. */
    stopGate: Promise<void> | undefined;

    static async open(): Promise<FakeCentral> {
      const central = new FakeCentral();
      state.centrals.push(central);
      return central;
    }

    on(): this {
      return this;
    }

    async startScanning(): Promise<void> {
      this.isScanning = true;
      this.log.push('start');
    }

    async stopScanning(): Promise<void> {
      this.isScanning = false;
      this.log.push('stop');
      await this.stopGate;
    }

    async rescan(): Promise<void> {}

    async stop(): Promise<void> {
      this.log.push('closed');
    }

    /** Never connects: a dial holds its link slot until aborted. */
    connect(): Promise<never> {
      return new Promise<never>(() => undefined);
    }
  }

  const state = {
    peripherals: [] as FakePeripheral[],
    centrals: [] as FakeCentral[],
    FakePeripheral,
    FakeCentral,
  };
  return state;
});

vi.mock('../../../../transports/ble/peripheral.js', () => ({ BlePeripheral: fakes.FakePeripheral }));
vi.mock('../../../../transports/ble/central.js', async (importOriginal) => ({
  ...(await importOriginal<object>()),
  BleCentral: fakes.FakeCentral,
}));

const PEER_ID = '1a2b3c4d5e6f7081';
const MESH_KEY = new Uint8Array(32).fill(7);
const HCI0 = { kind: 'hci', index: 0 } as const;

function sharedTransport(options: { maxLinks?: number; scanPeriodMs?: number } = {}): BleTransport {
  return new BleTransport({
    peripheral: HCI0,
    central: HCI0,
    peerId: PEER_ID,
    meshKeys: () => [MESH_KEY],
    hintRotationMs: 24 * 3_600_000,
    ...options,
  });
}

const peripheral = () => fakes.peripherals.at(-1) as InstanceType<typeof fakes.FakePeripheral>;
const central = () => fakes.centrals.at(-1) as InstanceType<typeof fakes.FakeCentral>;

function hintOf(advertisement: EncodedAdvertisement): string {
  const decoded = decodeAdvertisement(advertisement.advertisingData, advertisement.scanResponse);
  if (decoded instanceof Error) throw decoded;
  return Buffer.from(decoded.hint).toString('hex');
}

/** Every hint went out from one address only, and every address carried one hint only. */
function expectHintsAndAddressesPaired(): void {
  const addressesOf = new Map<string, Set<string>>();
  const hintsOf = new Map<string, Set<string>>();
  for (const { advertisement, address } of peripheral().sent) {
    const hint = hintOf(advertisement);
    addressesOf.set(hint, (addressesOf.get(hint) ?? new Set()).add(address));
    hintsOf.set(address, (hintsOf.get(address) ?? new Set()).add(hint));
  }
  for (const [hint, addresses] of addressesOf) expect([...addresses], `hint ${hint}`).toHaveLength(1);
  for (const [address, hints] of hintsOf) expect([...hints], `address ${address}`).toHaveLength(1);
}

describe('BleTransport.rotateDiscoveryHint on a shared controller', () => {
  let transport: BleTransport | undefined;

  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
    fakes.peripherals.length = 0;
    fakes.centrals.length = 0;
  });

  afterEach(async () => {
    await transport?.stop();
    transport = undefined;
    vi.useRealTimers();
  });

  it('never advertises the new hint from the old address, even when re-advertising while the scan stops', async () => {
    transport = sharedTransport({ maxLinks: 1 });
    await transport.start();
    await transport.startScanning();
    let confirmStop = (): void => undefined;
    central().stopGate = new Promise<void>((resolve) => {
      confirmStop = resolve;
    });
    const rotating = transport.rotateDiscoveryHint();
    await vi.advanceTimersByTimeAsync(100);
    // A dial fills the one link slot: the "accepting links" flag is re-advertised while the scan is stopping.
    const aborter = new AbortController();
    const dialing = transport
      .dial('aabbccddeeff', { signal: aborter.signal })
      .catch((error: unknown) => error);
    confirmStop();
    await rotating;
    aborter.abort();
    await dialing;

    const sent = peripheral().sent;
    expect(sent.length).toBeGreaterThanOrEqual(4); // open, the flag, the rotation, the flag again
    expect(new Set(sent.map(({ address }) => address)).size).toBe(2);
    expectHintsAndAddressesPaired();
    expect(peripheral().scanningAtAddressChange).toEqual([false]);
    expect(central().isScanning).toBe(true);
  });

  it('keeps hint and address paired through overlapping rotations', async () => {
    transport = sharedTransport();
    await transport.start();
    await transport.startScanning();
    await Promise.all([transport.rotateDiscoveryHint(), transport.rotateDiscoveryHint()]);
    await transport.rotateDiscoveryHint();
    expect(new Set(peripheral().sent.map(({ address }) => address)).size).toBe(4);
    expectHintsAndAddressesPaired();
    expect(peripheral().scanningAtAddressChange).toEqual([false, false, false]);
    expect(central().isScanning).toBe(true);
  });

  it('leaves the scan paused when the rotation ends in a paused stretch of the duty cycle', async () => {
    transport = sharedTransport({ scanPeriodMs: 10_000 });
    transport.setScanDuty(0.25);
    await transport.start();
    await transport.startScanning();
    await vi.advanceTimersByTimeAsync(2_000);
    expect(central().isScanning).toBe(true);
    let confirmStop = (): void => undefined;
    central().stopGate = new Promise<void>((resolve) => {
      confirmStop = resolve;
    });
    const rotating = transport.rotateDiscoveryHint();
    await vi.advanceTimersByTimeAsync(800); // the duty cycle's pause (2.5 s) passes meanwhile
    confirmStop();
    await rotating;
    expect(central().isScanning).toBe(false);
    expect(peripheral().scanningAtAddressChange).toEqual([false]);
    await vi.advanceTimersByTimeAsync(7_500); // the next period
    expect(central().isScanning).toBe(true);
  });

  it('does not restart the scan when the transport stopped during the rotation', async () => {
    transport = sharedTransport();
    await transport.start();
    await transport.startScanning();
    const scanner = central();
    let confirmStop = (): void => undefined;
    scanner.stopGate = new Promise<void>((resolve) => {
      confirmStop = resolve;
    });
    const rotating = transport.rotateDiscoveryHint();
    await vi.advanceTimersByTimeAsync(100);
    await transport.stop();
    transport = undefined;
    confirmStop();
    await rotating;
    expect(scanner.log).toEqual(['start', 'stop', 'closed']);
  });

  it('stops advertising and turns centrals away when it stops accepting; start() advertises a fresh pair', async () => {
    transport = sharedTransport();
    const links: unknown[] = [];
    transport.on('link', (link) => links.push(link));
    await transport.start();
    await transport.stopAccepting();
    expect(peripheral().isAdvertising).toBe(false);
    // A central that connected just before is closed, never handed on as a link.
    let closed = false;
    peripheral().onPipe?.({ remoteAddress: '11:22:33:44:55:66', close: () => (closed = true) });
    expect([closed, links]).toEqual([true, []]);
    // A rotation meanwhile advertises nothing.
    const heard = peripheral().sent.length;
    await transport.rotateDiscoveryHint();
    expect(peripheral().sent).toHaveLength(heard);
    expect(peripheral().isAdvertising).toBe(false);

    await transport.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(peripheral().isAdvertising).toBe(true);
    expect(new Set(peripheral().sent.map(({ address }) => address)).size).toBe(2);
    expectHintsAndAddressesPaired();
  });
});
