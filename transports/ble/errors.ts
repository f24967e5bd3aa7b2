// Errors of the BLE link framing (fragmentation.ts), advertisement format (advertisement.ts) and advertising
// address (private-address.ts).
// NearmeshErrors (the first two with a closed `reason` union), so callers branch on type, never on text.
import { NearmeshError } from '../../agent/core/errors.js';

/**
 * Why fragmentation or reassembly failed. Every receive-side reason means the link's byte stream can no
 * longer be trusted (a fragment was lost, duplicated, reordered or forged): the link must be closed.
 */
export type FragmentFailure =
  /** Sender side: maxFragmentBytes (ATT MTU − 3) below 20 or not an integer. */
  | 'fragment-size'
  /** A fragment of 0 bytes, or one that carries no frame bytes while its frame still needs some. */
  | 'empty'
  /** The reserved header bit is set, or a start fragment's length is truncated, not minimal or over 2^32 − 1. */
  | 'bad-header'
  /** The sequence number is not the next one: a fragment was lost, duplicated or reordered. */
  | 'sequence-gap'
  /** A continuation fragment while no frame is in progress. */
  | 'no-start'
  /** A start fragment while the previous frame is still incomplete. */
  | 'unexpected-start'
  /** A fragment carries more bytes than its frame has left. */
  | 'overrun'
  /** A frame stayed incomplete, with no fragment arriving, for longer than the reassembler's timeout. */
  | 'timeout';

export class FragmentError extends NearmeshError {
  constructor(
    readonly reason: FragmentFailure,
    detail: string,
  ) {
    super('ble-fragment', `BLE fragmentation: ${reason}: ${detail}`);
  }
}

/** Why bytes are not a usable nearmesh advertisement. A scanner skips the device either way. */
export type AdvertisementFailure =
  /** The AD structures do not parse (a length runs past the end, a UUID list is not whole UUIDs). */
  | 'malformed'
  /** Well-formed, but not nearmesh: no nearmesh service UUID or no manufacturer data with its company id. */
  | 'not-nearmesh'
  /** Nearmesh manufacturer or service data of the wrong size, or version 0. */
  | 'bad-data'
  /** No nearmesh service data (it comes in the scan response): nothing to open yet. */
  | 'incomplete'
  /** An agent of an earlier protocol version (1): not garbage, but this agent does not speak it. */
  | 'older-version'
  /** A later advertisement version than this agent speaks (the version is in `version`). */
  | 'unsupported-version';

export class AdvertisementError extends NearmeshError {
  constructor(
    readonly reason: AdvertisementFailure,
    detail: string,
    /** The advertised version, for 'older-version' and 'unsupported-version'. */
    readonly version?: number,
  ) {
    super('ble-advertisement', `BLE advertisement: ${reason}: ${detail}`);
  }
}

/** The controller refused (or never answered) a change of advertising address, or bleno hides its socket. */
export class BleAddressError extends NearmeshError {
  constructor(detail: string) {
    super('ble-address', `BLE advertising address not changed: ${detail}`);
  }
}
