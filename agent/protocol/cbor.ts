// The one cbor-x configuration the wire format uses, behind two functions, so its options and its
// memory-sharing quirks are handled in one place and nothing else imports cbor-x directly.
import { Decoder, Encoder } from 'cbor-x';

const options = {
  // Plain CBOR only: no record/structure extension (tags 57344+), no shared references, no packing.
  useRecords: false,
  structuredClone: false,
  pack: false,
  bundleStrings: false,
  useSelfDescribedHeader: false,
  // On Node, cbor-x tags a plain Uint8Array with tag 64 unless told not to; payloads are plain byte strings.
  tagUint8Array: false,
  // Maps (only possible in ignored trailing fields) decode to Map, so a peer's keys never touch an
  // object prototype.
  mapsAsObjects: false,
  // Decoded byte strings are copies that own their memory (see decodeCbor).
  copyBuffers: true,
  // Floats are only ever written by a later version; never shorten them lossily.
  useFloat32: 0,
} as const;

const encoder = new Encoder(options);
const decoder = new Decoder(options);

/**
 * Encodes a value built only from arrays, non-negative safe integers (< 2^32 as number, larger as bigint:
 * cbor-x writes numbers >= 2^32 as float64), byte strings, strings and null. Returns a fresh Uint8Array
 * that owns its whole ArrayBuffer: cbor-x returns a Buffer view into its reusable scratch buffer.
 */
export function encodeCbor(value: unknown): Uint8Array {
  const encoded = encoder.encode(value);
  return new Uint8Array(encoded);
}

/**
 * Decodes bytes that scanCbor has already accepted. May throw on what the scan let through only if
 * cbor-x itself misbehaves; the caller catches.
 *
 * cbor-x caches a DataView as a `dataView` property on its input object and, for Buffer input, would
 * return Buffer slices; decoding a fresh plain view keeps the caller's object untouched and makes every
 * byte string a plain Uint8Array. With copyBuffers those byte strings are copies, so the caller may
 * reuse or overwrite its input buffer (e.g. a socket read buffer) right after decoding.
 */
export function decodeCbor(bytes: Uint8Array): unknown {
  const view = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return decoder.decode(view) as unknown;
}
