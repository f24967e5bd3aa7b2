// The errors of the wire protocol: DecodeError for bytes from a peer (returned, never thrown, by
// decodeMessage) and EncodeError for an invalid message handed to encodeMessage by our own code.
import { NearmeshError } from '../core/errors.js';

/**
 * Why a frame could not be decoded. A closed set, so the link layer can count each kind and choose a
 * CLOSE code without parsing message text.
 */
export type DecodeErrorReason =
  /** Input larger than MAX_ENCODED_MESSAGE_BYTES; rejected before parsing. */
  | 'too-large'
  /** Not well-formed CBOR: truncated, reserved bytes, a stray break, invalid UTF-8 in a text string. */
  | 'not-cbor'
  /** Well-formed CBOR the protocol forbids: tags, indefinite lengths, unassigned simple values,
   *  nesting deeper than the limit, duplicate map keys. */
  | 'unsupported-item'
  /** Bytes left over after the one top-level item (two frames glued together, or garbage). */
  | 'trailing-bytes'
  /** The top-level item is not an array. */
  | 'not-array'
  /** The array is an envelope of our version but a field is missing, of the wrong type or out of range. */
  | 'bad-field'
  /** The header names a protocol version other than the one we speak (an older one included). */
  | 'unsupported-version';

export class DecodeError extends NearmeshError {
  constructor(
    readonly reason: DecodeErrorReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('decode', `cannot decode frame (${reason}): ${message}`, options);
  }
}

/** A message our own code built is not valid (id out of range, bad peer id, ...): a programming error. */
export class EncodeError extends NearmeshError {
  constructor(message: string) {
    super('encode', `cannot encode message: ${message}`);
  }
}
