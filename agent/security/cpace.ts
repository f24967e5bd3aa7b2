// CPace, the balanced PAKE of the CFRG (draft-irtf-cfrg-cpace), cipher suite CPACE-RISTR255-SHA512, in its
// initiator-responder form. Both sides hash the password-related string PRS (here the invitation code)
// with a channel identifier CI and a session id sid to a generator g of ristretto255, send Y = y·g for a
// random scalar y, and derive ISK from K = y·Y' and the transcript. Anyone who saw Ya and Yb but did not
// know the code has nothing to test guesses against offline: each guess needs a fresh online run.
// The group arithmetic is @noble/curves' (RFC 9496 ristretto255, its element derivation included).
import { createHash, randomBytes } from 'node:crypto';
import { ristretto255, ristretto255_hasher } from '@noble/curves/ed25519.js';

export const CPACE_DSI = new TextEncoder().encode('CPaceRistretto255');
const ISK_DSI = new TextEncoder().encode('CPaceRistretto255_ISK');
/** SHA-512's input block size: the zero padding fills the first block after DSI and PRS. */
const SHA512_BLOCK_BYTES = 128;
export const CPACE_POINT_BYTES = 32;
const SCALAR_BYTES = 32;

const Point = ristretto255.Point;
const deriveElement = (() => {
  const derive = ristretto255_hasher.deriveToCurve;
  if (derive === undefined) throw new Error('@noble/curves lacks ristretto255 element derivation');
  return derive;
})();
const ORDER = Point.Fn.ORDER;

/** The length prefixed with its LEB128 encoding (the draft's prepend_len). */
export function prependLen(data: Uint8Array): Uint8Array {
  const head: number[] = [];
  let length = data.length;
  do {
    head.push(length < 128 ? length : (length & 0x7f) | 0x80);
    length >>>= 7;
  } while (length > 0);
  return concat([Uint8Array.from(head), data]);
}

/** lv_cat(a0, a1, ...): each part with its length before it. */
export function lvCat(...parts: Uint8Array[]): Uint8Array {
  return concat(parts.map(prependLen));
}

/** generator_string(DSI, PRS, CI, sid, 128): DSI and PRS padded with zeros to one SHA-512 block, then CI and sid. */
export function generatorString(prs: Uint8Array, ci: Uint8Array, sid: Uint8Array): Uint8Array {
  const zpad = Math.max(0, SHA512_BLOCK_BYTES - 1 - prependLen(prs).length - prependLen(CPACE_DSI).length);
  return lvCat(CPACE_DSI, prs, new Uint8Array(zpad), ci, sid);
}

/** The encoded generator: element derivation (RFC 9496 §4.3.4) of SHA-512(generator string). */
export function generatorOf(prs: Uint8Array, ci: Uint8Array, sid: Uint8Array): Uint8Array {
  return generatorPoint(prs, ci, sid).toBytes();
}

function generatorPoint(prs: Uint8Array, ci: Uint8Array, sid: Uint8Array) {
  const hash = createHash('sha512')
    .update(generatorString(prs, ci, sid))
    .digest();
  return deriveElement(Uint8Array.from(hash));
}

/** A scalar as the draft recommends: 32 random bytes with the bits above 2^252 cleared, little-endian. */
export function sampleScalar(): Uint8Array {
  for (;;) {
    const scalar = Uint8Array.from(randomBytes(SCALAR_BYTES));
    scalar[SCALAR_BYTES - 1] = (scalar[SCALAR_BYTES - 1] as number) & 0x0f;
    // Zero (mod the order) would make the share the identity; the chance is 2^-252, the check is cheap.
    if (scalarOf(scalar) !== 0n) return scalar;
  }
}

/** Y = y·g for the generator of (prs, ci, sid): the public share. */
export function publicShare(
  scalar: Uint8Array,
  prs: Uint8Array,
  ci: Uint8Array,
  sid: Uint8Array,
): Uint8Array {
  return generatorPoint(prs, ci, sid).multiply(scalarOf(scalar)).toBytes();
}

/**
 * K = y·X for the other side's encoded share X, or undefined when X does not decode or K is the identity:
 * the draft's abort conditions (scalar_mult_vfy returning G.I).
 */
export function sharedPoint(scalar: Uint8Array, other: Uint8Array): Uint8Array | undefined {
  let point: InstanceType<typeof Point>;
  try {
    point = Point.fromBytes(other);
  } catch {
    return undefined;
  }
  const shared = point.multiply(scalarOf(scalar));
  return shared.is0() ? undefined : shared.toBytes();
}

/** transcript_ir(Ya, ADa, Yb, ADb) = lv_cat(Ya, ADa) ‖ lv_cat(Yb, ADb). */
export function transcriptIr(ya: Uint8Array, ada: Uint8Array, yb: Uint8Array, adb: Uint8Array): Uint8Array {
  return concat([lvCat(ya, ada), lvCat(yb, adb)]);
}

/** ISK = SHA-512(lv_cat(DSI ‖ "_ISK", sid, K) ‖ transcript_ir(Ya, ADa, Yb, ADb)). */
export function intermediateKey(sid: Uint8Array, k: Uint8Array, transcript: Uint8Array): Uint8Array {
  return Uint8Array.from(
    createHash('sha512')
      .update(lvCat(ISK_DSI, sid, k))
      .update(transcript)
      .digest(),
  );
}

/** One side of a CPace run: the share it sends, and ISK once the other share arrives. */
export interface CpaceParty {
  readonly share: Uint8Array;
  /** ISK for the other side's share (undefined: the draft's abort). `isInitiator` orders the transcript. */
  finish(other: Uint8Array, otherAd: Uint8Array): Uint8Array | undefined;
}

export function cpaceParty(options: {
  prs: Uint8Array;
  ci: Uint8Array;
  sid: Uint8Array;
  ad: Uint8Array;
  isInitiator: boolean;
  /** For test vectors only; a fresh random scalar otherwise. */
  scalar?: Uint8Array;
}): CpaceParty {
  const { prs, ci, sid, ad, isInitiator } = options;
  const scalar = options.scalar ?? sampleScalar();
  const share = publicShare(scalar, prs, ci, sid);
  return {
    share,
    finish(other, otherAd) {
      const k = sharedPoint(scalar, other);
      if (k === undefined) return undefined;
      const transcript = isInitiator
        ? transcriptIr(share, ad, other, otherAd)
        : transcriptIr(other, otherAd, share, ad);
      return intermediateKey(sid, k, transcript);
    },
  };
}

/** The little-endian scalar reduced mod the group order (sampled scalars are already below 2^252). */
function scalarOf(bytes: Uint8Array): bigint {
  let value = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i] as number);
  return value % ORDER;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}
