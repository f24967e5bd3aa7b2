// Standalone CBOR items that travel outside the envelope (the handshake identity payload, later the
// BLE info record): the same strict reader and writer as messages, so no second CBOR dialect.
import { CborReader, REJECTED } from './cbor-read.js';
import { type CborValue, encodeCbor } from './cbor-write.js';
import { DecodeError } from './errors.js';

export type { CborValue } from './cbor-write.js';

/**
 * Encodes arrays of unsigned integers (up to 2^53 − 1), byte strings, text and null as plain CBOR in
 * shortest form. Throws EncodeError for anything else. The result owns its whole buffer.
 */
export function encodeItem(value: CborValue): Uint8Array {
  return encodeCbor(value);
}

// Shared by every call; see CborReader on why that is safe.
const reader = new CborReader();

/**
 * Decodes exactly one CBOR item within the protocol's subset (docs/PROTOCOL.md §3, rules 3–5); never
 * throws. Integers are numbers up to 2^53 − 1 in magnitude whatever their head size (bigint beyond),
 * byte strings are copies owning their memory, maps are Maps. With `floats: false` any float is a
 * bad-field (for messages whose numbers are all uints, where a float 1.0 must not pass for the uint 1).
 * With `viewBytes: true` byte strings are views of `bytes` instead (no copy of bulk data; the caller must
 * own `bytes` and not change it while they are in use).
 */
export function decodeItem(
  bytes: Uint8Array,
  options: { floats?: boolean; viewBytes?: boolean } = {},
): { ok: true; value: unknown } | { ok: false; error: DecodeError } {
  if (!(bytes instanceof Uint8Array)) {
    return { ok: false, error: new DecodeError('not-cbor', 'input is not a Uint8Array') };
  }
  reader.start(bytes);
  reader.floats = options.floats ?? true;
  reader.viewBytes = options.viewBytes ?? false;
  let value = reader.readItem(1);
  if (value !== REJECTED && reader.pos !== reader.end) {
    reader.fail('trailing-bytes', `${reader.end - reader.pos} bytes after the item`);
    value = REJECTED;
  }
  reader.finish();
  if (value === REJECTED) return { ok: false, error: new DecodeError(reader.reason, reader.detail) };
  return { ok: true, value };
}
