// The message types on top of the envelope: what each puts in flags, id and body (and, routed, the origin's
// authentication), and the public functions encodeMessage / decodeMessage.

import { FrameTooLargeError } from '../core/errors.js';
import {
  type Announcement,
  decodeAnnouncement,
  encodeAnnouncement,
  isValidAnnouncement,
  REVOCATION_DIGEST_BYTES,
} from './announcement.js';
import { MAJOR_ARRAY, MAJOR_BYTES, MAJOR_TEXT } from './cbor-constants.js';
import { copyBytes, viewBytes } from './cbor-read.js';
import {
  decodeEnvelope,
  EnvelopeFields,
  encodeEnvelope,
  encodeEnvelopeParts,
  type ItemRef,
  MAX_ENCODED_MESSAGE_BYTES,
  type Route,
  type Routing,
} from './envelope.js';
import { DecodeError, EncodeError } from './errors.js';
import { isBytes, isInRange, isUint } from './fields.js';
import { decodeItem, encodeItem } from './item.js';
import { decodeUtf8 } from './utf8.js';

/** Type codes (low 5 bits of hdr). 0 and 10..31 are unassigned. */
export const MessageType = {
  data: 1,
  ack: 2,
  ping: 3,
  pong: 4,
  close: 5,
  announce: 6,
  endpoints: 7,
  cutover: 8,
  sync: 9,
} as const;

/** SYNC: bytes of the digest of the announcements held (§13.2). */
export const SYNC_DIGEST_BYTES = 16;
/** SYNC counts at most this many announcements (the most agents an agent remembers is far below it). */
const MAX_SYNC_COUNT = 0xffff;

/** Addresses one ENDPOINTS may list, and the longest one ("[v6 address%zone]:port"). */
export const MAX_ENDPOINTS = 16;
const MAX_ENDPOINT_CHARS = 64;

/** Flag bits, per type. Bits not listed here are reserved: sent as 0, ignored on receipt. */
export const MessageFlag = {
  /** DATA only: the sender wants an ACK carrying the same id. */
  ackRequested: 1,
  /** ANNOUNCE only: the originator forwards other agents' messages (it may be a next hop). */
  relays: 1,
  /**
   * Routed ACK only: the DATA it acknowledges first arrived flooded (a retransmission): the copy sent along
   * the route never did, so the route lost it (not the ACK's way back). The sender avoids that route.
   */
  routeLost: 1,
  /** Routed DATA and ACK: forward on every link instead of along routes (a retransmission, or its ACK). */
  flood: 2,
  /** DATA only: the payload is for the agent itself (coordination, §14), not for apps. */
  system: 4,
} as const;

/** CLOSE codes. Receivers treat unknown codes like `shutdown`. */
export const CloseCode = {
  shutdown: 0,
  duplicateLink: 1,
  protocolError: 2,
  selfConnection: 3,
  /** The sender refuses this peer: its identity is revoked or shunned, or it used an old key unknown. */
  refused: 4,
} as const;

/**
 * Most bytes a DATA envelope adds to its payload, for any id and any payload up to
 * MAX_ENCODED_MESSAGE_BYTES: array head 1 + hdr 2 + flags 1 + id up to 9 + byte-string head up to 5.
 * With ids below 2^32 it is at most 14. Lets a sender size payloads for a link's frame limit.
 */
export const MAX_DATA_OVERHEAD_BYTES = 18;
/**
 * The same for a routed DATA: + ttl 1 + src 9 + dst 9 + auth: 17 for a tag, 98 for key and signature
 * (the larger one here).
 */
export const MAX_ROUTED_DATA_OVERHEAD_BYTES = 135;

/** Largest CLOSE code: codes are plain uints, kept within what a number holds exactly. */
const MAX_CLOSE_CODE = Number.MAX_SAFE_INTEGER;

export type Message =
  | {
      type: 'data';
      /** Link-local: the sender's id on this link; routed: the origin's sequence number (§13.4). */
      id: number;
      ackRequested: boolean;
      payload: Uint8Array;
      route?: Route;
      /** Routed only: the origin's authentication (see Routing). */
      auth?: Uint8Array;
      flood?: boolean;
      /** For the agent itself (coordination), not for apps. */
      system?: boolean;
    }
  | { type: 'ack'; id: number; route?: Route; auth?: Uint8Array; flood?: boolean; routeLost?: boolean }
  | { type: 'ping'; id: number }
  | { type: 'pong'; id: number }
  | { type: 'close'; code: number; reason: string }
  | {
      type: 'announce';
      id: number;
      relays: boolean;
      announcement: Announcement;
      /** The announcement exactly as its origin encoded it: what the signature covers, forwarded as is. */
      body: Uint8Array;
      route: Route;
      auth: Uint8Array;
    }
  /** Link-local: where the sender accepts Wi-Fi/LAN links ("host:port"), so a BLE-only pair can upgrade. */
  | { type: 'endpoints'; addresses: string[] }
  /**
   * Link-local, on the link traffic is leaving: the last DATA id sent on it. The peer delivers what is
   * still in flight there before anything the new link brought (in-order handover).
   */
  | { type: 'cutover'; id: number }
  /**
   * Link-local, periodic: a summary of what the sender holds, so that two neighbours notice when they differ:
   * the digest and count of the latest ANNOUNCEs it holds, its mesh key epoch and its revocation list's digest.
   */
  | { type: 'sync'; digest: Uint8Array; count: number; keyEpoch: number; revocationDigest: Uint8Array };

/** A SYNC: what a neighbour holds (§13.2), for the mesh layer. */
export type SyncMessage = Extract<Message, { type: 'sync' }>;

/** The messages that may carry a route: what the mesh layer forwards. */
export type RoutedMessage = Extract<Message, { type: 'data' | 'ack' | 'announce' }>;

/** The ANNOUNCE message for an announcement: its body encoded once, here. */
export function announceMessage(
  fields: Omit<Extract<Message, { type: 'announce' }>, 'type' | 'body'>,
): Extract<Message, { type: 'announce' }> {
  if (!isValidAnnouncement(fields.announcement)) throw new EncodeError('invalid ANNOUNCE body');
  return { type: 'announce', ...fields, body: encodeAnnouncement(fields.announcement) };
}

export type DecodeResult =
  | { kind: 'message'; message: Message; ignoredFields: number }
  | { kind: 'unknown-type'; typeCode: number; version: number }
  | { kind: 'error'; error: DecodeError };

export interface DecodeOptions {
  /**
   * Return a DATA payload as a view of `bytes` instead of a copy: no allocation or copy per payload, but
   * the payload is only valid while `bytes` is, and keeps all of its ArrayBuffer alive. Only for callers
   * that own a fresh input buffer nobody else writes to, such as the secure channel's decrypted plaintext.
   * Default false: the payload is a copy the caller owns.
   */
  readonly payloadView?: boolean;
}

/**
 * Encodes a message as one frame. Throws EncodeError for an invalid message (a bug in the caller) and
 * FrameTooLargeError above MAX_ENCODED_MESSAGE_BYTES. The result is a fresh Uint8Array of exactly the
 * frame's size, owning its whole buffer; the payload is copied once, straight into it.
 */
/** Payloads above this go out as their own part; below it one joined buffer is cheaper than parts. */
const SEPARATE_PAYLOAD_MIN_BYTES = 4096;

/**
 * encodeMessage as parts whose concatenation is exactly encodeMessage's bytes; a bulk DATA payload is
 * one of the parts, not copied. For links and ciphers that take frames in parts (FrameLink.send).
 */
export function encodeMessageParts(message: Message): Uint8Array[] {
  if (message.type !== 'data' || !(message.payload instanceof Uint8Array)) return [encodeMessage(message)];
  if (message.payload.length < SEPARATE_PAYLOAD_MIN_BYTES) return [encodeMessage(message)];
  return encodeEnvelopeParts(
    MessageType.data,
    flagsOf(message),
    message.id,
    message.payload,
    routingOf(message),
  );
}

/** The routed fields of a DATA or ACK; EncodeError when a route comes without the origin's auth. */
function routingOf(message: { route?: Route; auth?: Uint8Array }): Routing | undefined {
  if (message.route === undefined) {
    if (message.auth !== undefined) throw new EncodeError('an origin auth without a route');
    return undefined;
  }
  if (message.auth === undefined) throw new EncodeError("a routed message needs its origin's auth");
  return { route: message.route, auth: message.auth };
}

export function encodeMessage(message: Message): Uint8Array {
  if (typeof message !== 'object' || message === null) throw new EncodeError('message is not an object');
  switch (message.type) {
    case 'data': {
      const payload = message.payload;
      if (!(payload instanceof Uint8Array)) throw new EncodeError('DATA payload is not a Uint8Array');
      if (payload.length > MAX_ENCODED_MESSAGE_BYTES) {
        throw new FrameTooLargeError(payload.length, MAX_ENCODED_MESSAGE_BYTES);
      }
      return encodeEnvelope(MessageType.data, flagsOf(message), message.id, payload, routingOf(message));
    }
    case 'ack':
      return encodeEnvelope(MessageType.ack, flagsOf(message), message.id, null, routingOf(message));
    case 'ping':
      return encodeEnvelope(MessageType.ping, 0, message.id, null, undefined);
    case 'pong':
      return encodeEnvelope(MessageType.pong, 0, message.id, null, undefined);
    case 'cutover':
      return encodeEnvelope(MessageType.cutover, 0, message.id, null, undefined);
    case 'close': {
      const { code, reason } = message;
      if (!Number.isSafeInteger(code) || code < 0 || code > MAX_CLOSE_CODE) {
        throw new EncodeError(`CLOSE code ${code} is not an unsigned integer`);
      }
      // A lone surrogate (which UTF-8 cannot express) is refused by the writer, also as an EncodeError.
      if (typeof reason !== 'string') throw new EncodeError('CLOSE reason is not a string');
      return encodeEnvelope(MessageType.close, 0, 0, [code, reason], undefined);
    }
    case 'endpoints': {
      const { addresses } = message;
      if (!Array.isArray(addresses) || addresses.length > MAX_ENDPOINTS || !addresses.every(isEndpoint)) {
        throw new EncodeError(`ENDPOINTS is not a list of at most ${MAX_ENDPOINTS} "host:port" strings`);
      }
      return encodeEnvelope(MessageType.endpoints, 0, 0, encodeItem([addresses]), undefined);
    }
    case 'sync': {
      if (!isSyncSummary(message)) throw new EncodeError(`SYNC is not ${SYNC_SHAPE}`);
      const { digest, count, keyEpoch, revocationDigest } = message;
      return encodeEnvelope(
        MessageType.sync,
        0,
        0,
        encodeItem([[digest, count, keyEpoch, revocationDigest]]),
        undefined,
      );
    }
    case 'announce': {
      if (message.route === undefined) throw new EncodeError('ANNOUNCE is always routed');
      if (!(message.body instanceof Uint8Array)) throw new EncodeError('ANNOUNCE body is not bytes');
      const flags = flagsOf(message);
      const { route, auth } = message;
      return encodeEnvelope(MessageType.announce, flags, message.id, message.body, { route, auth });
    }
    default:
      throw new EncodeError(`unknown message type ${String((message as { type?: unknown }).type)}`);
  }
}

/** The flags field a DATA, ACK or ANNOUNCE carries (the origin vouches for some of them: see origin.ts). */
export function flagsOf(message: RoutedMessage): number {
  switch (message.type) {
    case 'data':
      return (
        (message.ackRequested ? MessageFlag.ackRequested : 0) |
        (message.system === true ? MessageFlag.system : 0) |
        floodFlag(message)
      );
    case 'ack':
      return (
        floodFlag(message) |
        (message.routeLost === true && message.route !== undefined ? MessageFlag.routeLost : 0)
      );
    case 'announce':
      return message.relays ? MessageFlag.relays : 0;
  }
}

/** The flood flag only means something on a routed message; link-local ones never carry it. */
function floodFlag(message: { flood?: boolean; route?: Route }): number {
  return message.flood === true && message.route !== undefined ? MessageFlag.flood : 0;
}

// Reused for every frame: decodeMessage reads it completely before returning (see EnvelopeFields).
const fields = new EnvelopeFields();

/**
 * Decodes one frame. Never throws, whatever the input: a frame from a peer is untrusted, and one bad
 * frame must cost the link layer a counter increment, not an exception on its hot path.
 * DATA payloads are copies unless `options.payloadView` is set: by default the caller may reuse `bytes`
 * as soon as this returns. `bytes` itself is never modified.
 */
export function decodeMessage(bytes: Uint8Array, options?: DecodeOptions): DecodeResult {
  try {
    return decodeChecked(bytes, options?.payloadView === true);
  } catch (error) {
    // Unreachable by design (every check returns a result); kept so the contract holds even if a future
    // edit throws. No String(error): a thrown object without toString would throw again.
    const detail = error instanceof Error ? error.message : 'non-Error thrown';
    return { kind: 'error', error: new DecodeError('not-cbor', `unexpected: ${detail}`, { cause: error }) };
  }
}

function decodeChecked(bytes: Uint8Array, payloadView: boolean): DecodeResult {
  const error = decodeEnvelope(bytes, fields);
  if (error !== undefined) return { kind: 'error', error };
  const { typeCode, id, route, auth, ignoredFields, body } = fields;

  switch (typeCode) {
    case MessageType.data: {
      if (body.major !== MAJOR_BYTES) return badField('DATA body is not a byte string');
      const payload = payloadView
        ? viewBytes(bytes, body.offset, body.arg)
        : copyBytes(bytes, body.offset, body.arg);
      const ackRequested = (fields.flags & MessageFlag.ackRequested) !== 0;
      const system = (fields.flags & MessageFlag.system) !== 0 ? { system: true } : {};
      const message: Message =
        route === undefined
          ? { type: 'data', id, ackRequested, payload, ...system }
          : { type: 'data', id, ackRequested, payload, route, auth, ...floodField(fields.flags), ...system };
      return { kind: 'message', message, ignoredFields };
    }
    case MessageType.ack: {
      if (!body.isNull()) return badField('ACK body is not null');
      const routeLost = (fields.flags & MessageFlag.routeLost) !== 0 ? { routeLost: true } : {};
      const message: Message =
        route === undefined
          ? { type: 'ack', id }
          : { type: 'ack', id, route, auth, ...floodField(fields.flags), ...routeLost };
      return { kind: 'message', message, ignoredFields };
    }
    case MessageType.ping:
    case MessageType.pong:
    case MessageType.cutover: {
      const type =
        typeCode === MessageType.ping ? 'ping' : typeCode === MessageType.pong ? 'pong' : 'cutover';
      if (!body.isNull()) return badField(`${type.toUpperCase()} body is not null`);
      if (route !== undefined) {
        return badField(`${type.toUpperCase()} is link-local and cannot carry a route`);
      }
      return { kind: 'message', message: { type, id }, ignoredFields };
    }
    case MessageType.close:
      return decodeClose(bytes, fields);
    case MessageType.announce: {
      if (route === undefined || auth === undefined) return badField('ANNOUNCE must carry a route');
      if (body.major !== MAJOR_BYTES) return badField('ANNOUNCE body is not a byte string');
      const encoded = copyBytes(bytes, body.offset, body.arg);
      const announcement = decodeAnnouncement(encoded);
      if (announcement instanceof DecodeError) return { kind: 'error', error: announcement };
      const relays = (fields.flags & MessageFlag.relays) !== 0;
      return {
        kind: 'message',
        message: { type: 'announce', id, relays, announcement, body: encoded, route, auth },
        ignoredFields,
      };
    }
    case MessageType.endpoints:
      return decodeEndpoints(bytes, fields);
    case MessageType.sync:
      return decodeSync(bytes, fields);
    default:
      return { kind: 'unknown-type', typeCode, version: fields.version };
  }
}

/**
 * The first element of a link-local message's body: a byte string holding one CBOR array (ENDPOINTS, SYNC);
 * a DecodeResult when it is not that.
 */
function linkLocalBodyFirst(
  bytes: Uint8Array,
  envelope: EnvelopeFields,
  name: string,
): { first: unknown } | DecodeResult {
  if (envelope.route !== undefined) return badField(`${name} is link-local and cannot carry a route`);
  const body = envelope.body;
  if (body.major !== MAJOR_BYTES) return badField(`${name} body is not a byte string`);
  const item = decodeItem(viewBytes(bytes, body.offset, body.arg));
  if (!item.ok) return { kind: 'error', error: item.error };
  return { first: Array.isArray(item.value) ? (item.value[0] as unknown) : undefined };
}

function decodeEndpoints(bytes: Uint8Array, envelope: EnvelopeFields): DecodeResult {
  const body = linkLocalBodyFirst(bytes, envelope, 'ENDPOINTS');
  if (!('first' in body)) return body;
  const addresses = body.first;
  if (!Array.isArray(addresses) || addresses.length > MAX_ENDPOINTS || !addresses.every(isEndpoint)) {
    return badField(`ENDPOINTS body is not [[at most ${MAX_ENDPOINTS} "host:port" strings]]`);
  }
  return {
    kind: 'message',
    message: { type: 'endpoints', addresses: addresses as string[] },
    ignoredFields: envelope.ignoredFields,
  };
}

const SYNC_SHAPE = `[[digest: bstr ${SYNC_DIGEST_BYTES}, count: uint, keyEpoch: uint, revocationDigest: bstr ${REVOCATION_DIGEST_BYTES}]]`;

interface SyncFields {
  readonly digest: unknown;
  readonly count: unknown;
  readonly keyEpoch: unknown;
  readonly revocationDigest: unknown;
}

/** The four fields of a SYNC, each of its type and range (encoder and decoder check the same). */
function isSyncSummary(fields: SyncFields): fields is Omit<SyncMessage, 'type'> {
  return (
    isBytes(fields.digest, SYNC_DIGEST_BYTES) &&
    isInRange(fields.count, 0, MAX_SYNC_COUNT) &&
    isUint(fields.keyEpoch) &&
    isBytes(fields.revocationDigest, REVOCATION_DIGEST_BYTES)
  );
}

function decodeSync(bytes: Uint8Array, envelope: EnvelopeFields): DecodeResult {
  const body = linkLocalBodyFirst(bytes, envelope, 'SYNC');
  if (!('first' in body)) return body;
  const fields = body.first;
  if (!Array.isArray(fields) || fields.length < 4) return badField(`SYNC body is not ${SYNC_SHAPE}`);
  // Elements after the fourth are for later revisions: ignored.
  const [digest, count, keyEpoch, revocationDigest] = fields as unknown[];
  const summary = { digest, count, keyEpoch, revocationDigest };
  if (!isSyncSummary(summary)) return badField(`SYNC body is not ${SYNC_SHAPE}`);
  return {
    kind: 'message',
    message: { type: 'sync', ...summary },
    ignoredFields: envelope.ignoredFields,
  };
}

function isEndpoint(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    value.length >= 3 &&
    value.length <= MAX_ENDPOINT_CHARS &&
    /:\d{1,5}$/.test(value)
  );
}

function decodeClose(bytes: Uint8Array, envelope: EnvelopeFields): DecodeResult {
  if (envelope.route !== undefined) return badField('CLOSE is link-local and cannot carry a route');
  const body = envelope.body;
  if (body.major !== MAJOR_ARRAY || body.arg !== 2) return badField('CLOSE body is not [code, reason]');
  const [code, reason] = envelope.bodyElements as readonly [ItemRef, ItemRef];
  if (!code.isUint(MAX_CLOSE_CODE)) return badField('CLOSE code is not an unsigned integer');
  if (reason.major !== MAJOR_TEXT) return badField('CLOSE reason is not a text string');
  // Already checked as UTF-8 by the pass over the frame.
  const text = decodeUtf8(bytes, reason.offset, reason.offset + reason.arg);
  return {
    kind: 'message',
    message: { type: 'close', code: code.arg, reason: text },
    ignoredFields: envelope.ignoredFields,
  };
}

/** `flood: true` when the flag is set; nothing otherwise, so plain routed messages stay plain objects. */
function floodField(flags: number): { flood?: true } {
  return (flags & MessageFlag.flood) !== 0 ? { flood: true } : {};
}

function badField(detail: string): DecodeResult {
  return { kind: 'error', error: new DecodeError('bad-field', detail) };
}
