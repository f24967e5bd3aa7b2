// Standalone CBOR items that travel outside the envelope (the handshake identity payload, later the
// BLE info record): the same strict scan and cbor-x settings as messages, so no second CBOR dialect.
import { decodeCbor, encodeCbor } from './cbor.js';
import { scanCbor } from './cbor-scan.js';
import { DecodeError } from './errors.js';

/** Encodes arrays of unsigned integers, byte strings, text and null as plain CBOR. */
export function encodeItem(value: unknown): Uint8Array {
  return encodeCbor(value);
}

/** Decodes exactly one CBOR item within the protocol's subset; never throws. */
export function decodeItem(
  bytes: Uint8Array,
): { ok: true; value: unknown } | { ok: false; error: DecodeError } {
  const scan = scanCbor(bytes);
  if (!scan.ok) return { ok: false, error: new DecodeError(scan.reason, scan.detail) };
  try {
    return { ok: true, value: decodeCbor(bytes) };
  } catch (error) {
    return { ok: false, error: new DecodeError('not-cbor', (error as Error).message, { cause: error }) };
  }
}
