// Byte-level mutations of an encoded frame for the decoders' property tests (protocol-fuzz,
// protocol-coordination): flip a bit, truncate, insert, delete, or overwrite one byte with an
// interesting CBOR head.
import fc from 'fast-check';

export type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'overwrite'; at: number; byte: number };

/** Mutations whose 'overwrite' writes one of `interestingBytes` (or any byte). */
export function mutationsOverwriting(interestingBytes: readonly number[]): fc.Arbitrary<Mutation> {
  return fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({
      kind: fc.constant('insert' as const),
      at: fc.nat(),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 9 }),
    }),
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 4 }) }),
    fc.record({
      kind: fc.constant('overwrite' as const),
      at: fc.nat(),
      byte: fc.oneof(fc.constantFrom(...interestingBytes), fc.nat(255)),
    }),
  );
}

/** Applies one mutation; `at` wraps around the frame's length, so every mutation applies somewhere. */
export function mutate(frame: Uint8Array, mutation: Mutation): Uint8Array {
  const bytes = Array.from(frame);
  const at = bytes.length === 0 ? 0 : mutation.at % (bytes.length + 1);
  switch (mutation.kind) {
    case 'flip':
      if (at < bytes.length) bytes[at] = (bytes[at] as number) ^ (1 << mutation.bit);
      break;
    case 'truncate':
      bytes.length = at;
      break;
    case 'insert':
      bytes.splice(at, 0, ...mutation.bytes);
      break;
    case 'delete':
      bytes.splice(at, mutation.count);
      break;
    case 'overwrite':
      if (at < bytes.length) bytes[at] = mutation.byte;
      break;
  }
  return Uint8Array.from(bytes);
}
