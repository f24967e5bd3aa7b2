// Loads @stoprocent/bleno and @stoprocent/noble lazily for an adapter spec, powers them on, and reads their
// HCI send queue for flow control. peripheral.ts and central.ts are its only users; errors are typed here.
import { access } from 'node:fs/promises';
import type { Bleno } from '@stoprocent/bleno';
import type { Noble } from '@stoprocent/noble';
import { type BleAdapter, formatBleAdapter } from '../../agent/core/ble-adapter.js';
import { NearmeshError } from '../../agent/core/errors.js';
import {
  installSharedHciDriver,
  SHARED_DRIVER,
  type SharedBindParams,
  type SharedRole,
} from './shared-hci.js';

export const DEFAULT_POWER_ON_TIMEOUT_MS = 10_000;
/** What the UART driver is told when the spec names no rate; meaningless on a pty, common for HCI-UART boards. */
export const DEFAULT_UART_BAUD_RATE = 1_000_000;

/** Queued ACL packets above which a pipe's write() asks the link to wait, and the level it waits for. */
export const BACKLOG_HIGH_PACKETS = 16;
export const BACKLOG_LOW_PACKETS = 4;
export const BACKLOG_MAX_WAIT_MS = 1000;
/** A local disconnect the controller never confirms (adapter gone) still closes the pipe after this. */
export const DISCONNECT_CONFIRM_MS = 2000;
/** How long close() lets queued fragments drain before disconnecting anyway. */
export const CLOSE_FLUSH_MAX_MS = 2000;

/** How long stop() waits for a controller's confirmation: one that is gone never sends it. */
export const ADAPTER_REPLY_MS = 1000;

export type BleUnavailableReason = 'library' | 'adapter';

/** The BLE libraries cannot be loaded, or the adapter does not power on: BLE cannot run on this machine. */
export class BleUnavailableError extends NearmeshError {
  constructor(
    readonly reason: BleUnavailableReason,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super('ble-unavailable', `BLE unavailable: ${detail}`, options);
  }
}

/** A BLE connection ended without a local close (remote disconnect, lost radio, adapter gone). */
export class BleDisconnectedError extends NearmeshError {
  constructor(
    readonly address: string,
    detail: string,
  ) {
    super('ble-disconnected', `BLE connection to ${address} ended: ${detail}`);
  }
}

/** An adapter that worked left the powered-on state (USB unplug, controller reset, UART gone). */
export class BleAdapterLostError extends NearmeshError {
  constructor(
    readonly adapter: BleAdapter,
    readonly state: string,
  ) {
    super('ble-adapter-lost', `BLE adapter ${formatBleAdapter(adapter)} is gone (state ${state})`);
  }
}

/** Settles when `promise` does or after `ms`, whichever is first; never rejects. */
export async function withinMs(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const elapsed = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  try {
    await Promise.race([
      promise.then(
        () => undefined,
        () => undefined,
      ),
      elapsed,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The options both libraries' withBindings('hci', ...) take for an adapter spec. */
export function hciBindingOptions(
  adapter: BleAdapter,
  sharedRole?: SharedRole,
): {
  hciDriver?: string;
  deviceId?: number;
  bindParams?: {
    uart?: { port: string; baudRate: number };
    nearmeshShared?: SharedBindParams['nearmeshShared'];
  };
} {
  const uart =
    adapter.kind === 'uart'
      ? { uart: { port: adapter.path, baudRate: adapter.baudRate ?? DEFAULT_UART_BAUD_RATE } }
      : undefined;
  if (sharedRole !== undefined) {
    // Both roles on one controller: the shared driver opens the real one once (shared-hci.ts).
    return {
      hciDriver: SHARED_DRIVER,
      ...(adapter.kind === 'hci' && { deviceId: adapter.index }),
      bindParams: {
        ...uart,
        nearmeshShared: {
          driver: adapter.kind === 'hci' ? 'native' : 'uart',
          role: sharedRole,
          key: formatBleAdapter(adapter),
        },
      },
    };
  }
  if (adapter.kind === 'hci') return { hciDriver: 'native', deviceId: adapter.index };
  return { hciDriver: 'uart', ...(uart !== undefined && { bindParams: uart }) };
}

/** Whether two adapter specs name one controller (then both roles share it). */
export function isSameAdapter(a: BleAdapter, b: BleAdapter): boolean {
  return formatBleAdapter(a) === formatBleAdapter(b);
}

/** A bleno instance on the adapter, powered on. Imported here, never at module load: BLE is optional. */
export function openBleno(
  adapter: BleAdapter,
  powerOnTimeoutMs = DEFAULT_POWER_ON_TIMEOUT_MS,
  isShared = false,
): Promise<Bleno> {
  const options = hciBindingOptions(adapter, isShared ? 'peripheral' : undefined);
  return openLibrary('@stoprocent/bleno', adapter, powerOnTimeoutMs, options, async () =>
    (await import('@stoprocent/bleno')).withBindings('hci', options),
  );
}

/** A noble instance on the adapter, powered on. */
export function openNoble(
  adapter: BleAdapter,
  powerOnTimeoutMs = DEFAULT_POWER_ON_TIMEOUT_MS,
  isShared = false,
): Promise<Noble> {
  const options = hciBindingOptions(adapter, isShared ? 'central' : undefined);
  return openLibrary('@stoprocent/noble', adapter, powerOnTimeoutMs, options, async () =>
    (await import('@stoprocent/noble')).withBindings('hci', options),
  );
}

/** Checks the adapter, loads the library and binds it to the adapter, then waits for power-on. */
async function openLibrary<T extends PowerableLibrary & { stop(): void }>(
  library: string,
  adapter: BleAdapter,
  powerOnTimeoutMs: number,
  options: ReturnType<typeof hciBindingOptions>,
  bind: () => Promise<T>,
): Promise<T> {
  await requireAdapter(adapter);
  // Before the libraries load: they take their driver loader when their modules are evaluated.
  if (options.hciDriver === SHARED_DRIVER) installSharedHciDriver();
  let instance: T;
  try {
    instance = await bind();
  } catch (error) {
    throw new BleUnavailableError(
      'library',
      `cannot open ${library} on ${formatBleAdapter(adapter)}: ${String(error)}`,
      {
        cause: error,
      },
    );
  }
  await powerOn(instance, adapter, powerOnTimeoutMs).catch((error: unknown) => {
    release(instance);
    throw error;
  });
  dropLibrarySigint(instance);
  return instance;
}

/**
 * Both libraries' bindings add a SIGINT listener when they start, which calls process.exit(1) when it is the
 * last one: Ctrl-C would end the agent before it stopped (no "agent stopped", the control socket left behind).
 * The agent stops BLE itself on SIGINT, so the library's listener goes; its 'exit' cleanup stays.
 */
function dropLibrarySigint(instance: unknown): void {
  const handler = Reflect.get(Reflect.get(instance as object, '_bindings') ?? {}, '_sigIntHandler');
  if (typeof handler === 'function') process.removeListener('SIGINT', handler as () => void);
}

/**
 * An adapter must exist before the libraries touch it. For a kernel adapter: on a kernel without Bluetooth their HCI
 * socket polls a dead socket every second after stop() and throws out of a timer, killing the agent.
 * (Loading them for nothing would also cost memory and print their own warnings.)
 */
async function requireAdapter(adapter: BleAdapter): Promise<void> {
  // A UART port that is missing (unplugged) would only time out at power-on: say so at once.
  const path = adapter.kind === 'hci' ? `/sys/class/bluetooth/hci${adapter.index}` : adapter.path;
  try {
    await access(path);
  } catch {
    throw new BleUnavailableError(
      'adapter',
      `${formatBleAdapter(adapter)}: no such adapter (${path} does not exist)`,
    );
  }
}

/** The private corner of the kernel HCI driver that release() must quiet. */
interface KernelHciPoll {
  pollIsDevUp?: () => void;
  _socket?: { isDevUp: () => boolean };
}

/** Stops an instance that never powered on, so its driver does not keep retrying (or the process alive). */
function release(instance: { stop(): void }): void {
  try {
    instance.stop();
  } catch {
    // A binding that never opened may have nothing to stop; the error being reported is the power-on one.
  }
  // The kernel driver re-arms a device poll every second forever, even after stop(), and the poll
  // already scheduled calls the socket: make that last poll harmless and the re-arm a no-op.
  const hci = (instance as { _bindings?: { _hci?: KernelHciPoll } })._bindings?._hci;
  if (hci?._socket !== undefined && typeof hci.pollIsDevUp === 'function') {
    hci._socket.isDevUp = () => false;
    hci.pollIsDevUp = () => {};
  }
}

/** States after which waiting longer cannot help: no LE on this adapter, or no permission to drive it. */
const HOPELESS_STATES = new Set(['unsupported', 'unauthorized']);

interface PowerableLibrary {
  readonly state: string;
  on(event: 'stateChange', listener: (state: string) => void): unknown;
  removeListener(event: 'stateChange', listener: (state: string) => void): unknown;
}

/** Resolves at poweredOn; rejects at once on a hopeless state, or when timeoutMs passes (poweredOff may recover). */
async function powerOn(instance: PowerableLibrary, adapter: BleAdapter, timeoutMs: number): Promise<void> {
  const where = formatBleAdapter(adapter);
  if (instance.state === 'poweredOn') return;
  await new Promise<void>((resolve, reject) => {
    const finish = (error?: BleUnavailableError): void => {
      clearTimeout(timer);
      instance.removeListener('stateChange', onState);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onState = (state: string): void => {
      if (state === 'poweredOn') finish();
      else if (HOPELESS_STATES.has(state)) finish(new BleUnavailableError('adapter', `${where} is ${state}`));
    };
    const timer = setTimeout(
      () =>
        finish(
          new BleUnavailableError(
            'adapter',
            `${where} did not power on within ${timeoutMs} ms (state ${instance.state ?? 'unknown'})`,
          ),
        ),
      timeoutMs,
    );
    // Adding the first stateChange listener is what starts both libraries' HCI bindings.
    instance.on('stateChange', onState);
  });
}

/**
 * The library's queue of HCI ACL packets not yet given to the controller. Both libraries queue without bound
 * and resolve writes on queueing, so this queue's length is the only honest back-pressure signal they have.
 */
export interface AclBacklog {
  /** ACL packets queued in the library plus those the controller has not yet reported complete. */
  packets(): number;
  /** Resolves once packets() is at or below `packets` (or after `maxWaitMs`, so a stuck library cannot hang us). */
  waitAtMost(packets: number, maxWaitMs: number): Promise<void>;
}

/**
 * Finds the HCI object's ACL queue and per-connection in-flight counts (bleno: `_aclOutQueue`,
 * `_handleAclsInProgress`, `pushAclOutQueue`; noble: `_aclQueue`, `_aclConnections`, `flushAcl`) and hooks the
 * flush, which both call on every Number Of Completed Packets event. Private fields: checked at run time, and
 * undefined when a library version lays them out differently (then there is no back-pressure).
 */
export function findAclBacklog(instance: object, library: 'bleno' | 'noble'): AclBacklog | undefined {
  const queueKey = library === 'bleno' ? '_aclOutQueue' : '_aclQueue';
  const inFlightKey = library === 'bleno' ? '_handleAclsInProgress' : '_aclConnections';
  const flushKey = library === 'bleno' ? 'pushAclOutQueue' : 'flushAcl';
  const hci = property(property(instance, '_bindings'), '_hci');
  if (hci === undefined || !Array.isArray(Reflect.get(hci, queueKey))) return undefined;
  const flush: unknown = Reflect.get(hci, flushKey);
  if (typeof flush !== 'function') return undefined;
  const packets = (): number => {
    const queue: unknown = Reflect.get(hci, queueKey);
    return (Array.isArray(queue) ? queue.length : 0) + inFlight(Reflect.get(hci, inFlightKey));
  };
  const waiters = new Set<{ atMost: number; resolve: () => void }>();
  const wake = (): void => {
    const queued = packets();
    for (const waiter of waiters) {
      if (queued <= waiter.atMost) {
        waiters.delete(waiter);
        waiter.resolve();
      }
    }
  };
  Reflect.set(hci, flushKey, function (this: unknown, ...args: unknown[]): unknown {
    const result: unknown = Reflect.apply(flush, this, args);
    // noble's flushAcl is async (it awaits the buffer size first): look at the queue once it has run.
    if (result instanceof Promise) void result.then(wake, wake);
    else wake();
    return result;
  });
  return {
    packets,
    waitAtMost(atMost, maxWaitMs) {
      if (packets() <= atMost) return Promise.resolve();
      return new Promise((resolve) => {
        const waiter = {
          atMost,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          resolve();
        }, maxWaitMs);
        waiters.add(waiter);
      });
    },
  };
}

/** HCI reasons "Remote User Terminated Connection" and "Connection Terminated By Local Host": orderly closes. */
export const ORDERLY_DISCONNECT_REASONS: ReadonlySet<number> = new Set([0x13, 0x16]);

/**
 * Calls `listener` with the HCI reason of every Disconnection Complete, before the library's own handler (bleno's
 * 'disconnect' event drops the reason). Private field again: false when the library does not expose it.
 */
export function onHciDisconnect(
  instance: object,
  listener: (handle: number, reason: number) => void,
): boolean {
  const hci = property(property(instance, '_bindings'), '_hci');
  const prepend: unknown = hci === undefined ? undefined : Reflect.get(hci, 'prependListener');
  if (hci === undefined || typeof prepend !== 'function') return false;
  Reflect.apply(prepend, hci, [
    'disconnComplete',
    (handle: unknown, reason: unknown) => {
      if (typeof handle === 'number' && typeof reason === 'number') listener(handle, reason);
    },
  ]);
  return true;
}

/** Sums noble's Map of `{ pending }` or bleno's object of counts; anything else counts as 0. */
function inFlight(counts: unknown): number {
  let total = 0;
  const values =
    counts instanceof Map
      ? [...counts.values()]
      : typeof counts === 'object' && counts !== null
        ? Object.values(counts)
        : [];
  for (const value of values) {
    const count: unknown =
      typeof value === 'object' && value !== null ? Reflect.get(value, 'pending') : value;
    if (typeof count === 'number' && Number.isFinite(count) && count > 0) total += count;
  }
  return total;
}

function property(value: unknown, key: string): object | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const found: unknown = Reflect.get(value, key);
  return typeof found === 'object' && found !== null ? found : undefined;
}
