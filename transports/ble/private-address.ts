// Advertising from a rotating random address (PROTOCOL.md §12.2): a fixed controller address identifies a
// device across days as well as a peer id would. bleno always advertises from the public address (own address
// type 0 in the one LE Set Advertising Parameters it sends at power-on); peripheral.ts uses this module to send
// the two HCI commands that change that, through bleno's own HCI socket.
import { randomBytes } from 'node:crypto';
import { BleAddressError } from './errors.js';

const ADDRESS_BYTES = 6;
const HCI_COMMAND_PKT = 0x01;
const HCI_EVENT_PKT = 0x04;
const EVT_CMD_COMPLETE = 0x0e;
const OPCODE_LE_SET_RANDOM_ADDRESS = 0x2005;
const OPCODE_LE_SET_ADVERTISING_PARAMETERS = 0x2006;
/** Own_Address_Type "random device address": the one LE Set Random Address gave. */
const OWN_ADDRESS_RANDOM = 0x01;
/** What bleno advertises at unless BLENO_ADVERTISING_INTERVAL says otherwise, as it reads it. */
const DEFAULT_ADVERTISING_INTERVAL_MS = 100;
const ADVERTISING_INTERVAL_UNITS_PER_MS = 1.6;
/** ADV_IND: connectable undirected, as bleno advertises. */
const ADV_TYPE_CONNECTABLE_UNDIRECTED = 0x00;
const ALL_ADVERTISING_CHANNELS = 0x07;
/** HCI status "Command Disallowed": the controller is advertising, scanning or connecting right now. */
const HCI_COMMAND_DISALLOWED = 0x0c;
/** A controller answers a command within milliseconds; one that does not is gone. */
const COMMAND_REPLY_MS = 2000;

/**
 * A fresh non-resolvable private address (Core Vol 6 Part B §1.3.2.2), most significant byte first: the two top
 * bits 0, the other 46 random and neither all 0 nor all 1. Nothing links it to the last one.
 */
export function randomPrivateAddress(): Uint8Array {
  for (;;) {
    const address = new Uint8Array(randomBytes(ADDRESS_BYTES));
    address[0] = (address[0] ?? 0) & 0x3f;
    const isAllZero = address.every((byte) => byte === 0);
    const isAllOne = address[0] === 0x3f && address.subarray(1).every((byte) => byte === 0xff);
    if (!isAllZero && !isAllOne) return address;
  }
}

/** "3a:0b:…" as noble and bleno write addresses. */
export function formatAddress(address: Uint8Array): string {
  return [...address].map((byte) => byte.toString(16).padStart(2, '0')).join(':');
}

/** LE Set Random Address as an H4 packet (the address goes least significant byte first). */
export function setRandomAddressCommand(address: Uint8Array): Buffer {
  return command(OPCODE_LE_SET_RANDOM_ADDRESS, Uint8Array.from(address).reverse());
}

/** LE Set Advertising Parameters as bleno sends them, but advertising from the random address. */
export function randomAddressAdvertisingParametersCommand(): Buffer {
  const intervalMs = Number(process.env.BLENO_ADVERTISING_INTERVAL ?? DEFAULT_ADVERTISING_INTERVAL_MS);
  const interval = Math.floor(intervalMs * ADVERTISING_INTERVAL_UNITS_PER_MS);
  const parameters = Buffer.alloc(15);
  parameters.writeUInt16LE(interval, 0); // minimum interval
  parameters.writeUInt16LE(interval, 2); // maximum interval
  parameters.writeUInt8(ADV_TYPE_CONNECTABLE_UNDIRECTED, 4);
  parameters.writeUInt8(OWN_ADDRESS_RANDOM, 5);
  // Direct address type and address (bytes 6..12) stay 0: undirected advertising ignores them.
  parameters.writeUInt8(ALL_ADVERTISING_CHANNELS, 13);
  // Filter policy (byte 14) 0: anyone may scan and connect.
  return command(OPCODE_LE_SET_ADVERTISING_PARAMETERS, parameters);
}

/** The part of a bluetooth-hci-socket that bleno writes commands to and reads events from. */
export interface HciCommandSocket {
  write(data: Buffer): void;
  on(event: 'data', listener: (data: Buffer) => void): unknown;
  removeListener(event: 'data', listener: (data: Buffer) => void): unknown;
}

/** bleno's HCI socket (a private field: undefined when a bleno version lays it out differently). */
export function blenoHciSocket(bleno: object): HciCommandSocket | undefined {
  const hci: unknown = Reflect.get(Reflect.get(bleno, '_bindings') ?? {}, '_hci');
  const socket: unknown = typeof hci === 'object' && hci !== null ? Reflect.get(hci, '_socket') : undefined;
  if (typeof socket !== 'object' || socket === null) return undefined;
  const { write, on, removeListener } = socket as Partial<HciCommandSocket>;
  return typeof write === 'function' && typeof on === 'function' && typeof removeListener === 'function'
    ? (socket as HciCommandSocket)
    : undefined;
}

/**
 * Makes the controller advertise from `address` from its next advertising start: LE Set Random Address, then
 * LE Set Advertising Parameters with own address type random. Call it while advertising is off. Rejects with
 * BleAddressError when the controller refuses; the parameters are then left as they were, so advertising
 * carries on from the previous address.
 */
export async function useAdvertisingAddress(socket: HciCommandSocket, address: Uint8Array): Promise<void> {
  await send(socket, OPCODE_LE_SET_RANDOM_ADDRESS, setRandomAddressCommand(address));
  await send(socket, OPCODE_LE_SET_ADVERTISING_PARAMETERS, randomAddressAdvertisingParametersCommand());
}

async function send(socket: HciCommandSocket, opcode: number, packet: Buffer): Promise<void> {
  let onData: ((data: Buffer) => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  const status = new Promise<number | undefined>((resolve) => {
    onData = (data: Buffer) => {
      if (data[0] === HCI_EVENT_PKT && data[1] === EVT_CMD_COMPLETE && data.length >= 7) {
        if (data.readUInt16LE(4) === opcode) resolve(data[6]);
      }
    };
    timer = setTimeout(() => resolve(undefined), COMMAND_REPLY_MS);
    socket.on('data', onData);
  });
  socket.write(packet);
  try {
    const result = await status;
    if (result === undefined) throw new BleAddressError(`HCI command 0x${opcode.toString(16)} got no answer`);
    if (result !== 0) {
      const hex = result.toString(16).padStart(2, '0');
      const why = result === HCI_COMMAND_DISALLOWED ? ' (the controller is scanning or connecting)' : '';
      throw new BleAddressError(`HCI command 0x${opcode.toString(16)} failed with status 0x${hex}${why}`);
    }
  } finally {
    clearTimeout(timer);
    if (onData !== undefined) socket.removeListener('data', onData);
  }
}

function command(opcode: number, parameters: Uint8Array): Buffer {
  const packet = Buffer.alloc(4 + parameters.length);
  packet.writeUInt8(HCI_COMMAND_PKT, 0);
  packet.writeUInt16LE(opcode, 1);
  packet.writeUInt8(parameters.length, 3);
  packet.set(parameters, 4);
  return packet;
}
