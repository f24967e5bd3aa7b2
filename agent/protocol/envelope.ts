// The envelope every frame shares, [hdr, flags, id, body, ttl?, src?, dst?, ...ignored], independent of
// message type: header/version split, uint range checks, the optional route and ignored trailing fields.
import { isPeerId, PEER_ID_BYTES, peerIdFromBytes, peerIdToBytes } from '../identity/peer-id.js';
import { decodeCbor, encodeCbor } from './cbor.js';
import {
  MAJOR_ARRAY,
  MAJOR_BYTES,
  MAJOR_SIMPLE,
  MAJOR_UINT,
  peekHeader,
  type ScannedElement,
  scanCbor,
} from './cbor-scan.js';
import { DecodeError, EncodeError } from './errors.js';

export const PROTOCOL_VERSION = 1;
/** The low 5 bits of hdr are the message type; the bits above are the version minus 1. */
export const TYPE_BITS = 5;
const TYPE_COUNT = 1 << TYPE_BITS;
/** Hard ceiling for one encoded message, whatever the medium; links usually enforce a smaller one. */
export const MAX_ENCODED_MESSAGE_BYTES = 16 * 1024 * 1024;
/** Largest id: ids are JavaScript numbers and must stay exact. */
export const MAX_MESSAGE_ID = Number.MAX_SAFE_INTEGER;
/** Hop budget of a routed message: enough for a building-sized mesh, small enough to bound a flood. */
export const MAX_TTL_HOPS = 15;
/** Number of known envelope fields: hdr, flags, id, body, ttl, src, dst. */
const ROUTED_LENGTH = 7;
const LINK_LOCAL_LENGTH = 4;

/** Where a routed message comes from and goes to; absent on link-local messages. */
export interface Route {
  /** Hops the message may still travel, 0..15. */
  readonly ttlHops: number;
  /** Peer id (16 lowercase hex) of the originator. */
  readonly source: string;
  /** Peer id (16 lowercase hex) of the final recipient. */
  readonly destination: string;
}

export interface Envelope {
  readonly typeCode: number;
  /** Low 32 bits of the flags field; higher bits are reserved and dropped. */
  readonly flags: number;
  readonly id: number;
  readonly body: unknown;
  readonly route?: Route;
}

export interface DecodedEnvelope extends Envelope {
  readonly version: number;
  /** Major type of the body, and of its elements if it is an array (see cbor-scan). */
  readonly bodyShape: ScannedElement;
  /** Trailing elements beyond the known ones, ignored. */
  readonly ignoredFields: number;
}

export type EnvelopeDecodeResult =
  | { readonly ok: true; readonly envelope: DecodedEnvelope }
  | { readonly ok: false; readonly error: DecodeError };

/** Encodes an envelope whose body is already a CBOR-encodable value. Throws EncodeError if invalid. */
export function encodeEnvelope(envelope: Envelope): Uint8Array {
  const { typeCode, flags, id, body, route } = envelope;
  if (!Number.isInteger(typeCode) || typeCode < 0 || typeCode >= TYPE_COUNT) {
    throw new EncodeError(`type code ${typeCode} is not in 0..${TYPE_COUNT - 1}`);
  }
  if (!isUint(flags, 0xffff_ffff)) throw new EncodeError(`flags ${flags} is not a 32-bit unsigned integer`);
  if (!isUint(id, MAX_MESSAGE_ID)) throw new EncodeError(`id ${id} is not an integer in 0..2^53-1`);
  const hdr = (PROTOCOL_VERSION - 1) * TYPE_COUNT + typeCode;
  const fields: unknown[] = [hdr, flags, cborUint(id), body];
  if (route !== undefined) {
    const { ttlHops, source, destination } = route;
    if (!isUint(ttlHops, MAX_TTL_HOPS)) {
      throw new EncodeError(`ttlHops ${ttlHops} is not an integer in 0..${MAX_TTL_HOPS}`);
    }
    if (typeof source !== 'string' || !isPeerId(source)) {
      throw new EncodeError(`source ${String(source)} is not a peer id`);
    }
    if (typeof destination !== 'string' || !isPeerId(destination)) {
      throw new EncodeError(`destination ${String(destination)} is not a peer id`);
    }
    fields.push(ttlHops, peerIdToBytes(source), peerIdToBytes(destination));
  }
  return encodeCbor(fields);
}

/** Decodes and checks the envelope fields. Never throws. */
export function decodeEnvelope(bytes: Uint8Array): EnvelopeDecodeResult {
  if (!(bytes instanceof Uint8Array)) return fail('not-cbor', 'input is not a Uint8Array');
  if (bytes.length > MAX_ENCODED_MESSAGE_BYTES) {
    return fail('too-large', `${bytes.length} bytes exceeds the maximum of ${MAX_ENCODED_MESSAGE_BYTES}`);
  }
  const peeked = peekHeader(bytes);
  if (peeked !== undefined && versionOf(peeked) > PROTOCOL_VERSION) {
    return fail('unsupported-version', `version ${versionOf(peeked)}, we speak ${PROTOCOL_VERSION}`);
  }
  const scan = scanCbor(bytes);
  if (!scan.ok) return fail(scan.reason, scan.detail);
  if (scan.topMajor !== MAJOR_ARRAY) {
    return fail('not-array', `top-level item has major type ${scan.topMajor}`);
  }
  const shape = scan.elements;

  let decoded: unknown;
  try {
    decoded = decodeCbor(bytes);
  } catch (error) {
    return fail('not-cbor', error instanceof Error ? error.message : 'cbor-x threw a non-Error', error);
  }
  if (!Array.isArray(decoded) || decoded.length !== shape.length) {
    return fail('not-array', 'decoded item is not the scanned array');
  }
  const fields: readonly unknown[] = decoded;

  if (fields.length < 1) return fail('bad-field', 'empty array');
  const hdr = readUint(fields[0], shape[0], MAX_MESSAGE_ID);
  if (hdr === undefined) return fail('bad-field', 'hdr is not an unsigned integer');
  const version = versionOf(hdr);
  if (version > PROTOCOL_VERSION) {
    return fail('unsupported-version', `version ${version}, we speak ${PROTOCOL_VERSION}`);
  }
  if (fields.length < LINK_LOCAL_LENGTH) {
    return fail('bad-field', `envelope has ${fields.length} elements, at least 4 needed`);
  }

  const flags = readFlags(fields[1], shape[1]);
  if (flags === undefined) return fail('bad-field', 'flags is not an unsigned integer');
  const id = readUint(fields[2], shape[2], MAX_MESSAGE_ID);
  if (id === undefined) return fail('bad-field', 'id is not an integer in 0..2^53-1');

  let route: Route | undefined;
  let ignoredFields = 0;
  if (fields.length > LINK_LOCAL_LENGTH) {
    if (fields.length < ROUTED_LENGTH) {
      return fail('bad-field', 'ttl, src and dst must be all present or all absent');
    }
    const [ttl, src, dst] = [fields[4], fields[5], fields[6]];
    // All three null spells "absent" too, so that trailing fields can follow a link-local envelope.
    if (!(ttl === null && src === null && dst === null)) {
      const ttlHops = readUint(ttl, shape[4], MAX_TTL_HOPS);
      if (ttlHops === undefined) return fail('bad-field', `ttl is not an integer in 0..${MAX_TTL_HOPS}`);
      const source = readPeerId(src, shape[5]);
      if (source === undefined) return fail('bad-field', 'src is not an 8-byte peer id');
      const destination = readPeerId(dst, shape[6]);
      if (destination === undefined) return fail('bad-field', 'dst is not an 8-byte peer id');
      route = { ttlHops, source, destination };
    }
    ignoredFields = fields.length - ROUTED_LENGTH;
  }

  const bodyShape = shape[3] ?? { major: MAJOR_SIMPLE };
  const envelope: DecodedEnvelope = {
    version,
    typeCode: hdr % TYPE_COUNT,
    flags,
    id,
    body: fields[3],
    bodyShape,
    ignoredFields,
    ...(route === undefined ? {} : { route }),
  };
  return { ok: true, envelope };
}

/** A uint field: encoded as CBOR major type 0 (not a float that happens to be whole), within 0..max. */
export function readUint(value: unknown, shape: ScannedElement | undefined, max: number): number | undefined {
  if (shape?.major !== MAJOR_UINT) return undefined;
  // cbor-x gives numbers for heads up to 4 bytes and bigint for 8-byte heads, whatever the value.
  if (typeof value === 'bigint') {
    return value <= BigInt(max) ? Number(value) : undefined;
  }
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= max
    ? value
    : undefined;
}

/** Flags may use any of 64 bits; only the low ones mean something in v1 and the rest are ignored. */
function readFlags(value: unknown, shape: ScannedElement | undefined): number | undefined {
  if (shape?.major !== MAJOR_UINT) return undefined;
  if (typeof value === 'bigint') return Number(value & 0xffff_ffffn);
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
    ? value % 0x1_0000_0000
    : undefined;
}

function readPeerId(value: unknown, shape: ScannedElement | undefined): string | undefined {
  if (shape?.major !== MAJOR_BYTES || !(value instanceof Uint8Array) || value.length !== PEER_ID_BYTES) {
    return undefined;
  }
  return peerIdFromBytes(value);
}

function isUint(value: number, max: number): boolean {
  return Number.isSafeInteger(value) && value >= 0 && value <= max;
}

/**
 * Every uint handed to cbor-x goes through this: cbor-x writes numbers >= 2^32 as float64, while a bigint
 * gets the 8-byte uint head, which is then the shortest form.
 */
export function cborUint(value: number): number | bigint {
  return value > 0xffff_ffff ? BigInt(value) : value;
}

function versionOf(hdr: number): number {
  return Math.floor(hdr / TYPE_COUNT) + 1;
}

function fail(reason: DecodeError['reason'], detail: string, cause?: unknown): EnvelopeDecodeResult {
  return { ok: false, error: new DecodeError(reason, detail, cause === undefined ? undefined : { cause }) };
}
