// One controller for both roles: noble (central) and bleno (peripheral) each open "an HCI socket", and
// when both name the same adapter this module gives them two virtual sockets over ONE real one (a UART
// port cannot be opened twice, and two hosts each resetting one controller undo each other). It is a
// small HCI multiplexer:
// - commands and ACL data from both go to the controller; a second HCI Reset is answered here and not
//   sent (it would drop the other role's advertising, scan and connections);
// - events go to both (each library ignores what is not its own: connection complete events by role),
//   except ACL data and Number Of Completed Packets, which go to the role that owns the connection;
// - ACL packets wait here until the controller has a free buffer, since each library believes it has
//   all of them.
// It is installed as an extra driver of @stoprocent/bluetooth-hci-socket before noble and bleno load.
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';

export const SHARED_DRIVER = 'nearmesh-shared';

export type SharedRole = 'central' | 'peripheral';

/** What the libraries pass in bindParams for the shared driver. */
export interface SharedBindParams {
  nearmeshShared: { driver: 'uart' | 'native'; role: SharedRole; key: string };
  uart?: { port: string; baudRate: number };
}

/** The part of a bluetooth-hci-socket driver the libraries use. */
export interface HciSocket extends EventEmitter {
  bindRaw(devId: number | undefined, params?: unknown): void;
  bindUser(devId: number | undefined, params?: unknown): void;
  bindControl(): void;
  isDevUp(): boolean;
  setFilter(filter: Buffer): void;
  start(): void;
  stop(): void;
  write(data: Buffer): void;
}

export type HciSocketClass = new () => HciSocket;

export interface HciSocketModule {
  loadDriver(name: string): HciSocketClass;
}

const HCI_COMMAND_PKT = 0x01;
const HCI_ACLDATA_PKT = 0x02;
const HCI_EVENT_PKT = 0x04;
const EVT_DISCONN_COMPLETE = 0x05;
const EVT_CMD_COMPLETE = 0x0e;
const EVT_NUMBER_OF_COMPLETED_PACKETS = 0x13;
const EVT_LE_META = 0x3e;
const LE_CONN_COMPLETE = 0x01;
const LE_ENHANCED_CONN_COMPLETE = 0x0a;
const OPCODE_RESET = 0x0c03;
const OPCODE_SET_EVENT_MASK = 0x0c01;
const OPCODE_LE_SET_EVENT_MASK = 0x2001;
const EVENT_MASK_BYTES = 8;
const OPCODE_READ_BUFFER_SIZE = 0x1005;
const OPCODE_LE_READ_BUFFER_SIZE = 0x2002;
const RESET_COMPLETE = Buffer.from([HCI_EVENT_PKT, EVT_CMD_COMPLETE, 0x04, 0x01, 0x03, 0x0c, 0x00]);
/** Until the controller says otherwise, assume the smallest buffer pool: one packet. */
const DEFAULT_ACL_BUFFERS = 1;
/** A kernel socket filter that lets every event and ACL packet through (both roles read from it). */
const ACCEPT_ALL_FILTER = Buffer.from([
  (1 << HCI_EVENT_PKT) | (1 << HCI_ACLDATA_PKT),
  0,
  0,
  0,
  0xff,
  0xff,
  0xff,
  0xff,
  0xff,
  0xff,
  0xff,
  0xff,
  0,
  0,
]);

/** One real controller and the virtual sockets on it. */
class SharedController {
  readonly clients = new Set<SharedHciSocket>();
  readonly #real: HciSocket;
  readonly #owners = new Map<number, SharedRole>();
  readonly #inFlight = new Map<number, number>();
  readonly #queue: { handle: number; packet: Buffer }[] = [];
  #aclBuffers = DEFAULT_ACL_BUFFERS;
  /** Event masks asked for so far, by opcode: the controller gets their union, so no role loses events. */
  readonly #eventMasks = new Map<number, Buffer>();
  #isBound = false;
  #isStarted = false;
  #isFiltered = false;

  constructor(
    readonly key: string,
    realDriver: HciSocketClass,
  ) {
    this.#real = new realDriver();
    this.#real.on('data', (data: Buffer) => this.#fromController(data));
    this.#real.on('error', (error: unknown) => {
      for (const client of this.clients) client.emit('error', error);
    });
    this.#real.on('state', (isUp: boolean) => {
      // A controller that went away is not reused: whoever reopens the adapter gets a fresh one.
      if (!isUp && this.#isStarted && controllers.get(key) === this) controllers.delete(key);
      for (const client of this.clients) client.emit('state', isUp);
    });
  }

  isDevUp(): boolean {
    return this.#real.isDevUp();
  }

  bind(devId: number | undefined, params: unknown, user: boolean): void {
    if (this.#isBound) return;
    this.#isBound = true;
    if (user) this.#real.bindUser(devId, params);
    else this.#real.bindRaw(devId, params);
  }

  start(): void {
    if (this.#isStarted) return;
    this.#isStarted = true;
    this.#real.start();
  }

  setFilter(): void {
    if (this.#isFiltered) return;
    this.#isFiltered = true;
    this.#real.setFilter(ACCEPT_ALL_FILTER);
  }

  detach(client: SharedHciSocket): void {
    this.clients.delete(client);
    if (this.clients.size > 0) return;
    if (controllers.get(this.key) === this) controllers.delete(this.key);
    this.#real.stop();
  }

  fromClient(client: SharedHciSocket, data: Buffer): void {
    const type = data[0];
    if (type === HCI_COMMAND_PKT && data.length >= 3 && data.readUInt16LE(1) === OPCODE_RESET) {
      // The first host resets the controller; a reset from the second would undo the first's work.
      if (this.clients.size > 1 && this.#isStarted && this.isDevUp()) {
        setImmediate(() => client.emit('data', RESET_COMPLETE));
        return;
      }
    }
    if (type === HCI_COMMAND_PKT && data.length === 4 + EVENT_MASK_BYTES) {
      const opcode = data.readUInt16LE(1);
      if (opcode === OPCODE_SET_EVENT_MASK || opcode === OPCODE_LE_SET_EVENT_MASK) {
        this.#real.write(this.#unionMask(opcode, data));
        return;
      }
    }
    if (type === HCI_ACLDATA_PKT && data.length >= 3) {
      this.#queue.push({ handle: data.readUInt16LE(1) & 0x0fff, packet: data });
      this.#sendQueued();
      return;
    }
    this.#real.write(data);
  }

  #unionMask(opcode: number, command: Buffer): Buffer {
    const mask = Buffer.from(this.#eventMasks.get(opcode) ?? Buffer.alloc(EVENT_MASK_BYTES));
    for (let index = 0; index < EVENT_MASK_BYTES; index++) {
      mask[index] = (mask[index] ?? 0) | (command[4 + index] ?? 0);
    }
    this.#eventMasks.set(opcode, mask);
    return Buffer.concat([command.subarray(0, 4), mask]);
  }

  #sendQueued(): void {
    let total = 0;
    for (const count of this.#inFlight.values()) total += count;
    while (total < this.#aclBuffers && this.#queue.length > 0) {
      const next = this.#queue.shift();
      if (next === undefined) break;
      this.#inFlight.set(next.handle, (this.#inFlight.get(next.handle) ?? 0) + 1);
      total++;
      this.#real.write(next.packet);
    }
  }

  #fromController(data: Buffer): void {
    if (data[0] === HCI_ACLDATA_PKT && data.length >= 3) {
      this.#toOwner(data.readUInt16LE(1) & 0x0fff, data);
      return;
    }
    if (data[0] === HCI_EVENT_PKT && data.length >= 3) {
      if (data[1] === EVT_NUMBER_OF_COMPLETED_PACKETS) {
        this.#completed(data);
        return;
      }
      this.#noteEvent(data);
    }
    for (const client of this.clients) client.emit('data', data);
  }

  #noteEvent(data: Buffer): void {
    const event = data[1];
    if (event === EVT_LE_META && data.length >= 8 && data[4] === 0) {
      const subevent = data[3];
      if (subevent === LE_CONN_COMPLETE || subevent === LE_ENHANCED_CONN_COMPLETE) {
        const handle = data.readUInt16LE(5) & 0x0fff;
        this.#owners.set(handle, data[7] === 0x00 ? 'central' : 'peripheral');
        this.#inFlight.set(handle, 0);
      }
    } else if (event === EVT_DISCONN_COMPLETE && data.length >= 6 && data[3] === 0) {
      // The controller frees the buffers of a connection that ended (Core spec, Vol 4 Part E 4.3).
      const handle = data.readUInt16LE(4) & 0x0fff;
      this.#owners.delete(handle);
      this.#inFlight.delete(handle);
      for (let index = this.#queue.length - 1; index >= 0; index--) {
        if (this.#queue[index]?.handle === handle) this.#queue.splice(index, 1);
      }
      this.#sendQueued();
    } else if (event === EVT_CMD_COMPLETE && data.length >= 7 && data[6] === 0) {
      this.#noteBufferSize(data.readUInt16LE(4), data.subarray(7));
    }
  }

  /** Learns the controller's ACL buffer count from the libraries' own buffer-size queries. */
  #noteBufferSize(opcode: number, result: Buffer): void {
    if (opcode === OPCODE_LE_READ_BUFFER_SIZE && result.length >= 3 && result.readUInt16LE(0) > 0) {
      this.#aclBuffers = Math.max(1, result.readUInt8(2));
    } else if (
      opcode === OPCODE_READ_BUFFER_SIZE &&
      result.length >= 5 &&
      this.#aclBuffers === DEFAULT_ACL_BUFFERS
    ) {
      this.#aclBuffers = Math.max(1, result.readUInt16LE(3));
    }
  }

  /** Number Of Completed Packets: our credits back, and each role told about its own connections. */
  #completed(data: Buffer): void {
    const count = data[3] ?? 0;
    const perRole = new Map<SharedRole, [number, number][]>();
    for (let index = 0; index < count && 4 + index * 4 + 4 <= data.length; index++) {
      const handle = data.readUInt16LE(4 + index * 4) & 0x0fff;
      const packets = data.readUInt16LE(6 + index * 4);
      const inFlight = this.#inFlight.get(handle);
      if (inFlight !== undefined) this.#inFlight.set(handle, Math.max(0, inFlight - packets));
      const owner = this.#owners.get(handle);
      if (owner !== undefined) perRole.set(owner, [...(perRole.get(owner) ?? []), [handle, packets]]);
    }
    this.#sendQueued();
    for (const client of this.clients) {
      const entries = perRole.get(client.role);
      if (entries === undefined) continue;
      const event = Buffer.alloc(4 + entries.length * 4);
      event.writeUInt8(HCI_EVENT_PKT, 0);
      event.writeUInt8(EVT_NUMBER_OF_COMPLETED_PACKETS, 1);
      event.writeUInt8(1 + entries.length * 4, 2);
      event.writeUInt8(entries.length, 3);
      entries.forEach(([handle, packets], index) => {
        event.writeUInt16LE(handle, 4 + index * 4);
        event.writeUInt16LE(packets, 6 + index * 4);
      });
      client.emit('data', event);
    }
  }

  #toOwner(handle: number, data: Buffer): void {
    const owner = this.#owners.get(handle);
    for (const client of this.clients)
      if (owner === undefined || client.role === owner) client.emit('data', data);
  }
}

const controllers = new Map<string, SharedController>();

/** A virtual HCI socket: what noble or bleno sees instead of the real driver. */
class SharedHciSocket extends EventEmitter {
  role: SharedRole = 'central';
  #controller: SharedController | undefined;

  constructor(private readonly drivers: HciSocketModule) {
    super();
  }

  bindRaw(devId: number | undefined, params?: unknown): void {
    this.#attach(devId, params, false);
  }

  bindUser(devId: number | undefined, params?: unknown): void {
    this.#attach(devId, params, true);
  }

  bindControl(): void {}

  isDevUp(): boolean {
    return this.#controller?.isDevUp() ?? false;
  }

  setFilter(_filter: Buffer): void {
    this.#controller?.setFilter();
  }

  start(): void {
    this.#controller?.start();
  }

  stop(): void {
    this.#controller?.detach(this);
    this.#controller = undefined;
  }

  write(data: Buffer): void {
    this.#controller?.fromClient(this, data);
  }

  #attach(devId: number | undefined, params: unknown, user: boolean): void {
    const shared = (params as Partial<SharedBindParams> | undefined)?.nearmeshShared;
    if (shared === undefined) throw new Error(`${SHARED_DRIVER}: bindParams.nearmeshShared is missing`);
    this.role = shared.role;
    let controller = controllers.get(shared.key);
    if (controller === undefined) {
      controller = new SharedController(shared.key, this.drivers.loadDriver(shared.driver));
      controllers.set(shared.key, controller);
    }
    controller.clients.add(this);
    this.#controller = controller;
    controller.bind(devId, params, user);
  }
}

let isInstalled = false;

/** Adds the shared driver to bluetooth-hci-socket's loadDriver; call before noble or bleno is imported. */
export function installSharedHciDriver(): void {
  if (isInstalled) return;
  isInstalled = true;
  const require = createRequire(import.meta.url);
  const drivers = require('@stoprocent/bluetooth-hci-socket') as HciSocketModule;
  const original: HciSocketModule = { loadDriver: drivers.loadDriver.bind(drivers) };
  const shared = sharedSocketClass(original);
  drivers.loadDriver = (name: string): HciSocketClass =>
    name === SHARED_DRIVER ? shared : original.loadDriver(name);
}

/** The shared driver's socket class over these real drivers (exported for tests with a fake driver). */
export function sharedSocketClass(drivers: HciSocketModule): HciSocketClass {
  return class extends SharedHciSocket {
    constructor() {
      super(drivers);
    }
  } as unknown as HciSocketClass;
}
