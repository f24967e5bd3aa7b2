// The v1 message types (DATA, ACK, PING, PONG, CLOSE) on top of the envelope: what each puts in flags,
// id and body, and the two public functions encodeMessage / decodeMessage.

import { FrameTooLargeError } from '../errors.js';
import { MAJOR_BYTES, MAJOR_TEXT } from './cbor-scan.js';
import {
  cborUint,
  decodeEnvelope,
  encodeEnvelope,
  MAX_ENCODED_MESSAGE_BYTES,
  type Route,
  readUint,
} from './envelope.js';
import { DecodeError, EncodeError } from './errors.js';

/** Type codes (low 5 bits of hdr). 0 and 6..31 are unassigned. */
export const MessageType = {
  data: 1,
  ack: 2,
  ping: 3,
  pong: 4,
  close: 5,
} as const;

/** Flag bits. Bits not listed here are reserved: sent as 0, ignored on receipt. */
export const MessageFlag = {
  /** DATA only: the sender wants an ACK carrying the same id. */
  ackRequested: 1,
} as const;

/** CLOSE codes defined by v1. Receivers treat unknown codes like `shutdown`. */
export const CloseCode = {
  shutdown: 0,
  duplicateLink: 1,
  protocolError: 2,
  selfConnection: 3,
} as const;

/**
 * Most bytes a DATA envelope adds to its payload, for any id and any payload up to
 * MAX_ENCODED_MESSAGE_BYTES: array head 1 + hdr 1 + flags 1 + id up to 9 + byte-string head up to 5.
 * With ids below 2^32 it is at most 13. Lets a sender size payloads for a link's frame limit.
 */
export const MAX_DATA_OVERHEAD_BYTES = 17;
/** The same for a routed DATA: + ttl 1 + src 9 + dst 9. */
export const MAX_ROUTED_DATA_OVERHEAD_BYTES = 36;

/** Largest CLOSE code: codes are plain uints, kept within what a number holds exactly. */
const MAX_CLOSE_CODE = Number.MAX_SAFE_INTEGER;

export type Message =
  | { type: 'data'; id: number; ackRequested: boolean; payload: Uint8Array; route?: Route }
  | { type: 'ack'; id: number; route?: Route }
  | { type: 'ping'; id: number }
  | { type: 'pong'; id: number }
  | { type: 'close'; code: number; reason: string };

export type DecodeResult =
  | { kind: 'message'; message: Message; ignoredFields: number }
  | { kind: 'unknown-type'; typeCode: number; version: number }
  | { kind: 'error'; error: DecodeError };

// A lone surrogate cannot be written as UTF-8; cbor-x would write bytes our own decoder then rejects.
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Encodes a message as one frame. Throws EncodeError for an invalid message (a bug in the caller) and
 * FrameTooLargeError above MAX_ENCODED_MESSAGE_BYTES. The result is a fresh Uint8Array owning its buffer.
 */
export function encodeMessage(message: Message): Uint8Array {
  const encoded = encodeEnvelope(toEnvelope(message));
  if (encoded.length > MAX_ENCODED_MESSAGE_BYTES) {
    throw new FrameTooLargeError(encoded.length, MAX_ENCODED_MESSAGE_BYTES);
  }
  return encoded;
}

function toEnvelope(message: Message): Parameters<typeof encodeEnvelope>[0] {
  if (typeof message !== 'object' || message === null) throw new EncodeError('message is not an object');
  switch (message.type) {
    case 'data':
      if (!(message.payload instanceof Uint8Array)) throw new EncodeError('DATA payload is not a Uint8Array');
      if (message.payload.length > MAX_ENCODED_MESSAGE_BYTES) {
        // Checked before encoding so a huge payload is not copied into cbor-x's buffer first.
        throw new FrameTooLargeError(message.payload.length, MAX_ENCODED_MESSAGE_BYTES);
      }
      return {
        typeCode: MessageType.data,
        flags: message.ackRequested ? MessageFlag.ackRequested : 0,
        id: message.id,
        body: message.payload,
        ...withRoute(message.route),
      };
    case 'ack':
      return { typeCode: MessageType.ack, flags: 0, id: message.id, body: null, ...withRoute(message.route) };
    case 'ping':
      return { typeCode: MessageType.ping, flags: 0, id: message.id, body: null };
    case 'pong':
      return { typeCode: MessageType.pong, flags: 0, id: message.id, body: null };
    case 'close': {
      const { code, reason } = message;
      if (!Number.isSafeInteger(code) || code < 0 || code > MAX_CLOSE_CODE) {
        throw new EncodeError(`CLOSE code ${code} is not an unsigned integer`);
      }
      if (typeof reason !== 'string' || LONE_SURROGATE.test(reason)) {
        throw new EncodeError('CLOSE reason is not a well-formed string');
      }
      return { typeCode: MessageType.close, flags: 0, id: 0, body: [cborUint(code), reason] };
    }
    default:
      throw new EncodeError(`unknown message type ${String((message as { type?: unknown }).type)}`);
  }
}

function withRoute(route: Route | undefined): { route?: Route } {
  return route === undefined ? {} : { route };
}

/**
 * Decodes one frame. Never throws, whatever the input: a frame from a peer is untrusted, and one bad
 * frame must cost the link layer a counter increment, not an exception on its hot path.
 * DATA payloads are copies: the caller may reuse `bytes` as soon as this returns.
 */
export function decodeMessage(bytes: Uint8Array): DecodeResult {
  try {
    return decodeChecked(bytes);
  } catch (error) {
    // Unreachable by design (every check returns a result); kept so the contract holds even if cbor-x
    // or a future edit throws. No String(error): a thrown object without toString would throw again.
    const detail = error instanceof Error ? error.message : 'non-Error thrown';
    return { kind: 'error', error: new DecodeError('not-cbor', `unexpected: ${detail}`, { cause: error }) };
  }
}

function decodeChecked(bytes: Uint8Array): DecodeResult {
  const result = decodeEnvelope(bytes);
  if (!result.ok) return { kind: 'error', error: result.error };
  const { typeCode, version, flags, id, body, bodyShape, route, ignoredFields } = result.envelope;
  const message = (m: Message): DecodeResult => ({ kind: 'message', message: m, ignoredFields });
  const badField = (detail: string): DecodeResult => ({
    kind: 'error',
    error: new DecodeError('bad-field', detail),
  });

  switch (typeCode) {
    case MessageType.data: {
      if (bodyShape.major !== MAJOR_BYTES || !(body instanceof Uint8Array)) {
        return badField('DATA body is not a byte string');
      }
      const ackRequested = (flags & MessageFlag.ackRequested) !== 0;
      return message({ type: 'data', id, ackRequested, payload: body, ...withRoute(route) });
    }
    case MessageType.ack:
      if (body !== null) return badField('ACK body is not null');
      return message({ type: 'ack', id, ...withRoute(route) });
    case MessageType.ping:
    case MessageType.pong: {
      const type = typeCode === MessageType.ping ? 'ping' : 'pong';
      if (body !== null) return badField(`${type.toUpperCase()} body is not null`);
      if (route !== undefined) {
        return badField(`${type.toUpperCase()} is link-local and cannot carry a route`);
      }
      return message({ type, id });
    }
    case MessageType.close: {
      if (route !== undefined) return badField('CLOSE is link-local and cannot carry a route');
      const children = bodyShape.children;
      if (!Array.isArray(body) || children === undefined || body.length !== 2) {
        return badField('CLOSE body is not [code, reason]');
      }
      const code = readUint(body[0], { major: children[0] ?? -1 }, MAX_CLOSE_CODE);
      if (code === undefined) return badField('CLOSE code is not an unsigned integer');
      const reason: unknown = body[1];
      if (children[1] !== MAJOR_TEXT || typeof reason !== 'string') {
        return badField('CLOSE reason is not a text string');
      }
      return message({ type: 'close', code, reason });
    }
    default:
      return { kind: 'unknown-type', typeCode, version };
  }
}
