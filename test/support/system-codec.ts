// Property tests shared by the codecs of system payloads (bulk transfer, streams): arbitraries for their
// fields, and the robustness every decoder owes hostile input: whatever bytes arrive (random, or valid
// messages mutated), it returns a message or a DecodeError, never throws, and what it accepts re-encodes
// to the same message.
import fc from 'fast-check';
import { expect, test } from 'vitest';
import { DecodeError } from '../../agent/protocol/errors.js';
import { mutate, mutationsOverwriting } from './byte-mutation.js';

/** Unsigned integers up to 2^53 − 1, biased towards the boundaries where CBOR heads change size. */
export const uintArb = fc.oneof(
  fc.nat(),
  fc.maxSafeNat(),
  fc.constantFrom(0, 23, 24, 255, 256, 65_535, 65_536, 2 ** 32),
);

export const reasonArb = fc.string({ maxLength: 40 });

export function bytesArb(length: number): fc.Arbitrary<Uint8Array> {
  return fc.uint8Array({ minLength: length, maxLength: length });
}

/** Names of 1..maxChars graphemes that fit in maxBytes bytes of UTF-8. */
export function nameArb(maxChars: number, maxBytes: number): fc.Arbitrary<string> {
  return fc
    .string({ minLength: 1, maxLength: maxChars, unit: 'grapheme' })
    .filter((text) => Buffer.byteLength(text) <= maxBytes);
}

export interface RobustnessCase<M> {
  decode: (bytes: Uint8Array) => M | DecodeError;
  encode: (message: M) => Uint8Array;
  message: fc.Arbitrary<M>;
  /** Overwrites worth trying beyond random bytes: heads of the items the format uses. */
  interestingBytes: readonly number[];
  /** More inputs to mutate (the fixture's vectors). */
  seeds?: readonly Uint8Array[];
}

export function testDecoderRobustness<M>(codec: RobustnessCase<M>): void {
  const reencodes = (decoded: M | DecodeError): void => {
    if (!(decoded instanceof DecodeError)) expect(codec.decode(codec.encode(decoded))).toEqual(decoded);
  };

  test('random bytes decode to a message (that re-encodes) or a DecodeError, never a throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => reencodes(codec.decode(bytes))),
      { numRuns: 5000 },
    );
  });

  test('mutated messages decode to a message (that re-encodes) or a DecodeError', () => {
    const inputs =
      codec.seeds === undefined || codec.seeds.length === 0
        ? codec.message.map(codec.encode)
        : fc.oneof(fc.constantFrom(...codec.seeds), codec.message.map(codec.encode));
    fc.assert(
      fc.property(
        inputs,
        fc.array(mutationsOverwriting(codec.interestingBytes), { minLength: 1, maxLength: 4 }),
        (bytes, mutations) => reencodes(codec.decode(mutations.reduce(mutate, bytes))),
      ),
      { numRuns: 5000 },
    );
  });
}
