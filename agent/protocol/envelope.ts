// The envelope every frame shares, [hdr, flags, id, body, ttl?, src?, dst?, auth?, ...ignored],
// independent of message type: header/version split, uint range checks, the optional route with its origin
// authentication, and ignored trailing fields.
import { FrameTooLargeError } from '../core/errors.js';
import { isPeerId, PEER_ID_BYTES, peerIdFromBytes, writePeerId } from '../core/peer-id.js';
import {
  INFO_INDEFINITE,
  MAJOR_ARRAY,
  MAJOR_BYTES,
  MAJOR_SIMPLE,
  MAJOR_UINT,
  SIMPLE_NULL,
} from './cbor-constants.js';
import { CborReader, copyBytes } from './cbor-read.js';
import {
  bytesSize,
  type CborValue,
  headSize,
  valueSize,
  writeBytes,
  writeHead,
  writeValue,
} from './cbor-write.js';
import { DecodeError, EncodeError } from './errors.js';

export const PROTOCOL_VERSION = 2;
/** The low 5 bits of hdr are the message type; the bits above are the version minus 1. */
export const TYPE_BITS = 5;
const TYPE_COUNT = 1 << TYPE_BITS;
/** Hard ceiling for one encoded message, whatever the medium; links usually enforce a smaller one. */
export const MAX_ENCODED_MESSAGE_BYTES = 16 * 1024 * 1024;
/** Largest id: ids are JavaScript numbers and must stay exact. */
export const MAX_MESSAGE_ID = Number.MAX_SAFE_INTEGER;
/** Hop budget of a routed message: enough for a building-sized mesh, small enough to bound a flood. */
export const MAX_TTL_HOPS = 15;
/** Known envelope fields of a routed message: hdr, flags, id, body, ttl, src, dst, auth. */
const ROUTED_LENGTH = 8;
const LINK_LOCAL_LENGTH = 4;
const HDR = 0;
const FLAGS = 1;
const ID = 2;
const BODY = 3;
const TTL = 4;
const SRC = 5;
const DST = 6;
const AUTH = 7;
/** An origin's authentication tag on a message for one agent (HMAC-SHA256 under the pair's key, cut). */
export const ORIGIN_TAG_BYTES = 16;
/** An origin's signature form: its Ed25519 public key (32) then the signature (64); anyone can check it. */
export const ORIGIN_SIGNATURE_AUTH_BYTES = 96;

/** The body's elements that are captured when it is an array: CLOSE's [code, reason]. */
const BODY_ELEMENTS = 2;

/** Where a routed message comes from and goes to; absent on link-local messages. */
export interface Route {
  /** Hops the message may still travel, 0..15. */
  readonly ttlHops: number;
  /** Peer id (16 lowercase hex) of the originator. */
  readonly source: string;
  /** Peer id (16 lowercase hex) of the final recipient. */
  readonly destination: string;
}

/** The envelope fields of a routed message after its body: where it goes and its origin's proof. */
export interface Routing {
  readonly route: Route;
  /** ORIGIN_TAG_BYTES (a tag for the destination) or ORIGIN_SIGNATURE_AUTH_BYTES (key and signature). */
  readonly auth: Uint8Array;
}

/**
 * Encodes an envelope around a body that is already a CborValue. Positional arguments: this runs for
 * every message sent, and an envelope object per call would be garbage at once. Throws EncodeError if
 * the envelope is invalid and FrameTooLargeError (before allocating anything) above
 * MAX_ENCODED_MESSAGE_BYTES.
 */
export function encodeEnvelope(
  typeCode: number,
  flags: number,
  id: number,
  body: CborValue,
  routing: Routing | undefined,
): Uint8Array {
  const hdr = checkEnvelope(typeCode, flags, id, routing);
  const prefixSize = envelopePrefixSize(hdr, flags, id);
  const size = prefixSize + valueSize(body) + routingSize(routing);
  if (size > MAX_ENCODED_MESSAGE_BYTES) throw new FrameTooLargeError(size, MAX_ENCODED_MESSAGE_BYTES);
  const out = new Uint8Array(size);
  const pos = writeValue(out, writeEnvelopePrefix(out, hdr, flags, id, routing), body);
  writeRouting(out, pos, routing);
  return out;
}

/**
 * encodeEnvelope for a byte-string body, as parts whose concatenation is exactly encodeEnvelope's
 * output: [envelope up to the body's length, the body itself, the route after it]. The body is not
 * copied, so a bulk payload goes to the cipher where it lies.
 */
export function encodeEnvelopeParts(
  typeCode: number,
  flags: number,
  id: number,
  body: Uint8Array,
  routing: Routing | undefined,
): Uint8Array[] {
  const hdr = checkEnvelope(typeCode, flags, id, routing);
  const prefixSize = envelopePrefixSize(hdr, flags, id) + headSize(body.length);
  const size = prefixSize + body.length + routingSize(routing);
  if (size > MAX_ENCODED_MESSAGE_BYTES) throw new FrameTooLargeError(size, MAX_ENCODED_MESSAGE_BYTES);
  const out = new Uint8Array(prefixSize + routingSize(routing));
  writeHead(out, writeEnvelopePrefix(out, hdr, flags, id, routing), MAJOR_BYTES, body.length);
  if (routing === undefined) return [out, body];
  writeRouting(out, prefixSize, routing);
  return [out.subarray(0, prefixSize), body, out.subarray(prefixSize)];
}

/** The hdr of a message of this type in the version we speak. */
export function hdrOf(typeCode: number): number {
  return (PROTOCOL_VERSION - 1) * TYPE_COUNT + typeCode;
}

/** Validates the envelope fields (EncodeError otherwise) and returns hdr. */
function checkEnvelope(typeCode: number, flags: number, id: number, routing: Routing | undefined): number {
  if (!Number.isInteger(typeCode) || typeCode < 0 || typeCode >= TYPE_COUNT) {
    throw new EncodeError(`type code ${typeCode} is not in 0..${TYPE_COUNT - 1}`);
  }
  if (!isUint(flags, 0xffff_ffff)) throw new EncodeError(`flags ${flags} is not a 32-bit unsigned integer`);
  if (!isUint(id, MAX_MESSAGE_ID)) throw new EncodeError(`id ${id} is not an integer in 0..2^53-1`);
  if (routing !== undefined) checkRouting(routing);
  return hdrOf(typeCode);
}

/** Bytes of the array head and the three integer fields before the body. */
function envelopePrefixSize(hdr: number, flags: number, id: number): number {
  return 1 + headSize(hdr) + headSize(flags) + headSize(id);
}

function routingSize(routing: Routing | undefined): number {
  if (routing === undefined) return 0;
  return headSize(routing.route.ttlHops) + 2 * bytesSize(PEER_ID_BYTES) + bytesSize(routing.auth.length);
}

function writeEnvelopePrefix(
  out: Uint8Array,
  hdr: number,
  flags: number,
  id: number,
  routing: Routing | undefined,
): number {
  let pos = writeHead(out, 0, MAJOR_ARRAY, routing === undefined ? LINK_LOCAL_LENGTH : ROUTED_LENGTH);
  pos = writeHead(out, pos, MAJOR_UINT, hdr);
  pos = writeHead(out, pos, MAJOR_UINT, flags);
  return writeHead(out, pos, MAJOR_UINT, id);
}

function writeRouting(out: Uint8Array, pos: number, routing: Routing | undefined): void {
  if (routing === undefined) return;
  const { route, auth } = routing;
  let at = writeHead(out, pos, MAJOR_UINT, route.ttlHops);
  at = writePeerId(out, writeHead(out, at, MAJOR_BYTES, PEER_ID_BYTES), route.source);
  at = writePeerId(out, writeHead(out, at, MAJOR_BYTES, PEER_ID_BYTES), route.destination);
  writeBytes(out, at, auth);
}

function checkRouting(routing: Routing): void {
  checkRoute(routing.route);
  const { auth } = routing;
  if (!(auth instanceof Uint8Array) || !isAuthLength(auth.length)) {
    throw new EncodeError(
      `auth is not ${ORIGIN_TAG_BYTES} or ${ORIGIN_SIGNATURE_AUTH_BYTES} bytes: the origin must seal a routed message`,
    );
  }
}

/** The two lengths an origin's authentication may have: a pair's tag, or key and signature. */
function isAuthLength(length: number): boolean {
  return length === ORIGIN_TAG_BYTES || length === ORIGIN_SIGNATURE_AUTH_BYTES;
}

function checkRoute(route: Route): void {
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
}

/** The head of one item of the envelope and where its content starts; built only once its role is known. */
export class ItemRef {
  major = 0;
  info = 0;
  /** The head's argument: the value of a uint, the length of a string, the count of an array. */
  arg = 0;
  /** Low 32 bits of the argument. */
  low = 0;
  /** Offset in the input of the content after the head (the bytes of a string). */
  offset = 0;

  capture(reader: CborReader): void {
    this.major = reader.major;
    this.info = reader.info;
    this.arg = reader.arg;
    this.low = reader.low;
    this.offset = reader.pos;
  }

  isNull(): boolean {
    return this.major === MAJOR_SIMPLE && this.info === SIMPLE_NULL;
  }

  /** A uint (major type 0, not a float that happens to be whole) within 0..max (max at most 2^53 − 1). */
  isUint(max: number): boolean {
    return this.major === MAJOR_UINT && this.arg <= max;
  }

  isBytes(length: number): boolean {
    return this.major === MAJOR_BYTES && this.arg === length;
  }
}

/**
 * What one pass over a frame found. The caller owns an instance and reuses it for every frame: it is
 * filled by decodeEnvelope and must be read before the next call (decoding is synchronous, so a
 * module-level instance is safe). Bodies are left as ItemRefs into the input: only the message type
 * says what a body must be, and unknown types must not pay for building one.
 */
export class EnvelopeFields {
  version = 0;
  typeCode = 0;
  /** Low 32 bits of the flags field; higher bits are reserved and dropped. */
  flags = 0;
  id = 0;
  route: Route | undefined = undefined;
  /** The origin's authentication of a routed message (a copy); undefined on link-local ones. */
  auth: Uint8Array | undefined = undefined;
  /** Trailing elements beyond the known ones, ignored. */
  ignoredFields = 0;
  readonly body = new ItemRef();
  /** When the body is an array: its first BODY_ELEMENTS elements. */
  readonly bodyElements: readonly ItemRef[] = [new ItemRef(), new ItemRef()];
  /** hdr, flags, id, body, ttl, src, dst, auth as read; only the first `count` are meaningful. */
  readonly known: readonly ItemRef[] = [
    new ItemRef(),
    new ItemRef(),
    new ItemRef(),
    this.body,
    new ItemRef(),
    new ItemRef(),
    new ItemRef(),
    new ItemRef(),
  ];
  /** Elements of the envelope array. */
  count = 0;
}

// One reader for every frame; see CborReader on why a shared instance is safe.
const reader = new CborReader();

/**
 * Checks a frame against docs/PROTOCOL.md §3 in the order given there and fills `out`; returns the
 * first failure, or undefined. Never throws. Rules 2–6 are checked in one pass that also captures the
 * known fields, so rule 7 (field types and ranges) is judged only once the whole frame is known good.
 */
export function decodeEnvelope(bytes: Uint8Array, out: EnvelopeFields): DecodeError | undefined {
  if (!(bytes instanceof Uint8Array)) return new DecodeError('not-cbor', 'input is not a Uint8Array');
  if (bytes.length > MAX_ENCODED_MESSAGE_BYTES) {
    return new DecodeError(
      'too-large',
      `${bytes.length} bytes exceeds the maximum of ${MAX_ENCODED_MESSAGE_BYTES}`,
    );
  }
  reader.start(bytes);
  const wellFormed = readFields(reader, out);
  reader.finish();
  if (!wellFormed) return new DecodeError(reader.reason, reader.detail);
  return checkFields(bytes, out);
}

/**
 * Rules 2–6 in one pass over the frame, capturing the heads of the known fields on the way. The version
 * is peeked right after the array head, before anything else is checked: a later version may use CBOR
 * that this one forbids and must still get a clear 'unsupported-version' rather than a structural error.
 */
function readFields(r: CborReader, out: EnvelopeFields): boolean {
  if (!r.readHead()) return false;
  if (r.major !== MAJOR_ARRAY || r.info === INFO_INDEFINITE) {
    // Still checked whole: a malformed item outranks trailing bytes, which outrank "not an array".
    const major = r.major;
    if (!r.skipBody(1)) return false;
    if (r.pos !== r.end) return r.fail('trailing-bytes', `${r.end - r.pos} bytes after the item`);
    return r.fail('not-array', `top-level item has major type ${major}`);
  }
  const count = r.arg;
  if (count >= 1 && !peekVersion(r)) return false;
  if (!r.checkCount(count, 1)) return false;
  const known = out.known;
  for (let i = 0; i < count; i++) {
    if (!r.readHead()) return false;
    if (i < ROUTED_LENGTH) (known[i] as ItemRef).capture(r);
    if (i === BODY && r.major === MAJOR_ARRAY && r.info !== INFO_INDEFINITE) {
      if (!readBodyElements(r, out.bodyElements)) return false;
    } else if (!r.skipBody(2)) {
      return false;
    }
  }
  if (r.pos !== r.end) return r.fail('trailing-bytes', `${r.end - r.pos} bytes after the item`);
  out.count = count;
  return true;
}

/**
 * Fails with 'unsupported-version' if the next head is a uint whose version is not ours; otherwise moves
 * the reader back, so the pass reads that head again whatever it is (even malformed).
 */
function peekVersion(r: CborReader): boolean {
  const mark = r.pos;
  if (r.readHead() && r.major === MAJOR_UINT && versionOf(r.arg) !== PROTOCOL_VERSION) {
    return r.fail('unsupported-version', versionMismatch(versionOf(r.arg)));
  }
  r.pos = mark;
  return true;
}

function versionMismatch(version: number): string {
  return `version ${version}, this agent speaks ${PROTOCOL_VERSION} only`;
}

/** An array body (depth 2): its elements are checked like any item, the first ones also captured. */
function readBodyElements(r: CborReader, elements: readonly ItemRef[]): boolean {
  const count = r.arg;
  if (!r.checkCount(count, 1)) return false;
  for (let i = 0; i < count; i++) {
    if (!r.readHead()) return false;
    if (i < BODY_ELEMENTS) (elements[i] as ItemRef).capture(r);
    if (!r.skipBody(3)) return false;
  }
  return true;
}

/** Rule 7 for the envelope: types and ranges of hdr, flags, id and the route. */
function checkFields(bytes: Uint8Array, out: EnvelopeFields): DecodeError | undefined {
  const count = out.count;
  const known = out.known as readonly [
    ItemRef,
    ItemRef,
    ItemRef,
    ItemRef,
    ItemRef,
    ItemRef,
    ItemRef,
    ItemRef,
  ];
  if (count < 1) return badField('empty array');
  const hdr = known[HDR];
  if (!hdr.isUint(MAX_MESSAGE_ID)) return badField('hdr is not an unsigned integer');
  const version = versionOf(hdr.arg);
  if (version !== PROTOCOL_VERSION) return new DecodeError('unsupported-version', versionMismatch(version));
  if (count < LINK_LOCAL_LENGTH) return badField(`envelope has ${count} elements, at least 4 needed`);
  // Flags may use any of 64 bits; only the low ones mean something (§4) and the rest are ignored.
  const flags = known[FLAGS];
  if (flags.major !== MAJOR_UINT) return badField('flags is not an unsigned integer');
  const id = known[ID];
  if (!id.isUint(MAX_MESSAGE_ID)) return badField('id is not an integer in 0..2^53-1');

  let route: Route | undefined;
  let auth: Uint8Array | undefined;
  let ignoredFields = 0;
  if (count > LINK_LOCAL_LENGTH) {
    if (count < ROUTED_LENGTH) return badField('ttl, src, dst and auth must be all present or all absent');
    const ttl = known[TTL];
    const src = known[SRC];
    const dst = known[DST];
    const authField = known[AUTH];
    // All four null spells "absent" too, so that trailing fields can follow a link-local envelope.
    if (!(ttl.isNull() && src.isNull() && dst.isNull() && authField.isNull())) {
      if (!ttl.isUint(MAX_TTL_HOPS)) return badField(`ttl is not an integer in 0..${MAX_TTL_HOPS}`);
      if (!src.isBytes(PEER_ID_BYTES)) return badField('src is not an 8-byte peer id');
      if (!dst.isBytes(PEER_ID_BYTES)) return badField('dst is not an 8-byte peer id');
      if (authField.major !== MAJOR_BYTES || !isAuthLength(authField.arg)) {
        return badField(`auth is not ${ORIGIN_TAG_BYTES} or ${ORIGIN_SIGNATURE_AUTH_BYTES} bytes`);
      }
      route = {
        ttlHops: ttl.arg,
        source: peerIdFromBytes(bytes.subarray(src.offset, src.offset + PEER_ID_BYTES)),
        destination: peerIdFromBytes(bytes.subarray(dst.offset, dst.offset + PEER_ID_BYTES)),
      };
      auth = copyBytes(bytes, authField.offset, authField.arg);
    }
    ignoredFields = count - ROUTED_LENGTH;
  }

  out.version = version;
  out.typeCode = hdr.arg % TYPE_COUNT;
  out.flags = flags.low;
  out.id = id.arg;
  out.route = route;
  out.auth = auth;
  out.ignoredFields = ignoredFields;
  return undefined;
}

function badField(detail: string): DecodeError {
  return new DecodeError('bad-field', detail);
}

function isUint(value: number, max: number): boolean {
  return Number.isSafeInteger(value) && value >= 0 && value <= max;
}

function versionOf(hdr: number): number {
  return hdr < TYPE_COUNT ? 1 : Math.floor(hdr / TYPE_COUNT) + 1;
}
