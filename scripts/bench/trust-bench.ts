// Rows 18 and 20: what origin authentication (PROTOCOL.md §2.1) costs per routed message, against protocol
// v1 (the baseline build of v1-baseline.ts, its own codec, in this process) and against the bare node:crypto
// primitives on the same bytes.
// 18: bytes of a routed unicast DATA with a 32-byte payload, v2 (tag) vs v1, at realistic ids; 18b the
//     signed (broadcast) form, for information.
// 20: signed broadcasts an agent originates (seal + encode) and verifies (decode + verify) per second, vs
//     bare Ed25519 sign / verify of the covered bytes; and a unicast's tag, made at the origin and checked at
//     the destination, codec included, vs v1's encode + decode of the same message.
import { createPublicKey, generateKeyPairSync, type KeyObject, randomInt, sign, verify } from 'node:crypto';
import { type Identity, identityFromPrivateKey } from '../../agent/identity/identity.js';
import { KeyDirectory } from '../../agent/identity/key-directory.js';
import { BROADCAST_ID } from '../../agent/mesh/address.js';
import { SequenceCounter } from '../../agent/mesh/sequence.js';
import {
  decodeMessage,
  encodeMessage,
  type Message,
  ORIGIN_SIGNATURE_AUTH_BYTES,
  ORIGIN_TAG_BYTES,
  type RoutedMessage,
} from '../../agent/protocol/index.js';
import { originAuthInput } from '../../agent/protocol/origin.js';
import { OriginAuth } from '../../agent/security/origin-auth.js';
import { measureOpsPerSecond, type RateTask, rateOf } from './ops-rate.js';
import { median } from './stats.js';
import { formatPerSecond, formatTimes, passMark, type ResultRow } from './table.js';
import { V1_COMMIT, type V1Baseline, v1Baseline } from './v1-baseline.js';

/** The goal: a routed unicast grows by at most this many bytes. */
const MAX_ADDED_BYTES = 24;
/**
 * A signed broadcast costs one Ed25519 signature where it starts and one verification in every agent it
 * reaches: everything nearmesh does around them (building the covered bytes, the key checks, the codec)
 * should stay within 10 % of the primitive itself.
 */
const MIN_RATIO_TO_BARE_ED25519 = 0.9;
export const PAYLOAD_BYTES = 32;
/** `[mesh] ttl` by default; any ttl is one byte. */
const TTL_HOPS = 4;
/** v1 ids drawn to find the usual v1 size (a v1 router started at a random id below 2^31). */
const V1_ID_DRAWS = 1_001;
/**
 * The id an agent gives its first routed message today: a real SequenceCounter with nothing reserved
 * starts at the clock floor (1,024 per ms since 1970, so 9 bytes of CBOR), as every agent's ids do.
 */
function firstSequenceNumber(): number {
  return new SequenceCounter({ reservedSequence: 0, reserveSequence: () => {} }).next();
}
/** Operations per tinybench sample: signatures take tens of µs, a tag round a few µs. */
const SIGNATURES_PER_SAMPLE = 16;
const TAGS_PER_SAMPLE = 64;

/** Two agents: `from` originates, `to` receives; each knows the other's key (as after a handshake). */
interface Pair {
  readonly from: Identity;
  readonly fromKey: KeyObject;
  readonly fromAuth: OriginAuth;
  readonly toAuth: OriginAuth;
  readonly to: Identity;
}

function identity(): { identity: Identity; privateKey: KeyObject } {
  const { privateKey } = generateKeyPairSync('ed25519');
  return { identity: identityFromPrivateKey(privateKey), privateKey };
}

function pair(): Pair {
  const [origin, destination] = [identity(), identity()];
  const fromKeys = new KeyDirectory();
  fromKeys.learn(destination.identity.publicKey);
  const toKeys = new KeyDirectory();
  toKeys.learn(origin.identity.publicKey);
  return {
    from: origin.identity,
    fromKey: origin.privateKey,
    fromAuth: new OriginAuth(origin.identity, fromKeys),
    toAuth: new OriginAuth(destination.identity, toKeys),
    to: destination.identity,
  };
}

const PAYLOAD = new Uint8Array(PAYLOAD_BYTES).fill(0x61);

/** A routed DATA as the messenger makes it, not yet sealed: to one agent reliably, or to everyone (no ack). */
function routedData(parties: Pair, id: number, to: 'one' | 'everyone'): Extract<Message, { type: 'data' }> {
  const destination = to === 'one' ? parties.to.peerId : BROADCAST_ID;
  return {
    type: 'data',
    id,
    ackRequested: to === 'one',
    payload: PAYLOAD,
    route: { ttlHops: TTL_HOPS, source: parties.from.peerId, destination },
  };
}

/** The message with its origin's auth: a tag for one known destination, key + signature for many. */
function sealed<T extends RoutedMessage>(parties: Pair, message: T, isForMany: boolean): T {
  const auth = parties.fromAuth.seal(message, isForMany);
  const expected = isForMany ? ORIGIN_SIGNATURE_AUTH_BYTES : ORIGIN_TAG_BYTES;
  if (auth.length !== expected) throw new Error(`seal gave ${auth.length} bytes of auth, not ${expected}`);
  return { ...message, auth };
}

/** The size v1 gave `message` at its usual ids: random below 2^31 (the median over many draws). */
function v1Bytes(v1: V1Baseline, message: Extract<Message, { type: 'data' }>): number {
  const sizes = Array.from(
    { length: V1_ID_DRAWS },
    () => v1.encodeMessage({ ...message, id: randomInt(0, 2 ** 31) }).length,
  );
  return median(sizes);
}

export async function routedBytesRows(): Promise<ResultRow[]> {
  const v1 = await v1Baseline();
  const parties = pair();
  const unicastV1 = v1Bytes(v1, routedData(parties, 0, 'one'));
  const id = firstSequenceNumber();
  const unicastV2 = encodeMessage(sealed(parties, routedData(parties, id, 'one'), false)).length;
  const signedV1 = v1Bytes(v1, routedData(parties, 0, 'everyone'));
  const signedV2 = encodeMessage(sealed(parties, routedData(parties, id, 'everyone'), true)).length;
  const signed = (bytes: number): string => `${bytes >= 0 ? '+' : '−'}${Math.abs(bytes)} B`;
  return [
    {
      benchmark: `18 routed unicast DATA bytes (${PAYLOAD_BYTES} B payload), v2 vs v1`,
      nearmesh: `v2 ${unicastV2} B (${signed(unicastV2 - unicastV1)})`,
      baseline: `v1 ${unicastV1} B`,
      ratio: formatTimes(unicastV2 / unicastV1),
      goal: `≤ +${MAX_ADDED_BYTES} B (v1 ${V1_COMMIT})`,
      pass: passMark(unicastV2 - unicastV1 <= MAX_ADDED_BYTES),
    },
    {
      benchmark: `18b signed (broadcast) DATA bytes, v2 vs v1`,
      nearmesh: `v2 ${signedV2} B (${signed(signedV2 - signedV1)})`,
      baseline: `v1 ${signedV1} B`,
      ratio: formatTimes(signedV2 / signedV1),
      goal: '— (info)',
      pass: '—',
    },
  ];
}

/** A batch of `count` operations; the checksum keeps results alive. */
function batch(name: string, count: number, operation: () => number): RateTask {
  return {
    name,
    run: () => {
      let checksum = 0;
      for (let i = 0; i < count; i++) checksum += operation();
      return checksum;
    },
  };
}

function signatureTasks(parties: Pair): Record<'seal' | 'sign' | 'check' | 'verify', RateTask> {
  const message = routedData(parties, firstSequenceNumber(), 'everyone');
  const input = originAuthInput(message);
  const frame = encodeMessage(sealed(parties, message, true));
  const signature = sign(null, input, parties.fromKey);
  const publicKey = createPublicKey(parties.fromKey);
  return {
    seal: batch('originate: seal + encode', SIGNATURES_PER_SAMPLE, () => {
      const auth = parties.fromAuth.seal(message, true);
      return encodeMessage({ ...message, auth }).length;
    }),
    // The baselines do the same codec work: every message is encoded and decoded, signed or not (v1 too).
    sign: batch('bare Ed25519 sign + encode', SIGNATURES_PER_SAMPLE, () => {
      const bare = sign(null, input, parties.fromKey);
      return encodeMessage({ ...message, auth: Buffer.concat([parties.from.publicKey, bare]) }).length;
    }),
    check: batch('receive: decode + verify', SIGNATURES_PER_SAMPLE, () => {
      const result = decodeMessage(frame);
      if (result.kind !== 'message' || result.message.type !== 'data') throw new Error('undecodable');
      if (parties.toAuth.verify(result.message, true) !== 'ok')
        throw new Error('a genuine signature refused');
      return result.message.payload.length;
    }),
    verify: batch('decode + bare Ed25519 verify', SIGNATURES_PER_SAMPLE, () => {
      const result = decodeMessage(frame);
      if (result.kind !== 'message' || result.message.type !== 'data') throw new Error('undecodable');
      if (!verify(null, input, publicKey, signature)) throw new Error('a genuine signature refused');
      return result.message.payload.length;
    }),
  };
}

function tagTasks(parties: Pair, v1: V1Baseline): Record<'v2' | 'v1', RateTask> {
  const message = routedData(parties, firstSequenceNumber(), 'one');
  return {
    v2: batch('v2 unicast: seal + encode, decode + verify', TAGS_PER_SAMPLE, () => {
      const frame = encodeMessage({ ...message, auth: parties.fromAuth.seal(message, false) });
      const result = decodeMessage(frame);
      if (result.kind !== 'message' || result.message.type !== 'data') throw new Error('undecodable');
      if (parties.toAuth.verify(result.message, false) !== 'ok') throw new Error('a genuine tag refused');
      return result.message.payload.length;
    }),
    v1: batch('v1 unicast: encode, decode', TAGS_PER_SAMPLE, () => {
      const result = v1.decodeMessage(v1.encodeMessage(message));
      if (result.kind !== 'message' || result.message.type !== 'data') throw new Error('undecodable');
      return result.message.payload.length;
    }),
  };
}

/** µs per operation a rate means. */
function microseconds(perSecond: number): string {
  return `${(1e6 / perSecond).toFixed(1)} µs`;
}

export async function originAuthRateRows(): Promise<ResultRow[]> {
  const v1 = await v1Baseline();
  const parties = pair();
  const signatures = signatureTasks(parties);
  const tags = tagTasks(parties, v1);
  const signatureRates = await measureOpsPerSecond(Object.values(signatures), {
    opsPerSample: SIGNATURES_PER_SAMPLE,
  });
  const tagRates = await measureOpsPerSecond(Object.values(tags), { opsPerSample: TAGS_PER_SAMPLE });
  const signatureRow = (label: string, task: RateTask, bare: RateTask, what: string): ResultRow => {
    const [rate, bareRate] = [rateOf(signatureRates, task), rateOf(signatureRates, bare)];
    return {
      benchmark: `${label} ${what}`,
      nearmesh: `${formatPerSecond(rate)} (${microseconds(rate)})`,
      baseline: `bare ${formatPerSecond(bareRate)} (${microseconds(bareRate)})`,
      ratio: formatTimes(rate / bareRate),
      goal: `≥ ${formatTimes(MIN_RATIO_TO_BARE_ED25519)} bare node:crypto + codec`,
      pass: passMark(rate / bareRate >= MIN_RATIO_TO_BARE_ED25519),
    };
  };
  const [v2Tag, v1Plain] = [rateOf(tagRates, tags.v2), rateOf(tagRates, tags.v1)];
  const addedUs = 1e6 / v2Tag - 1e6 / v1Plain;
  return [
    signatureRow('20a', signatures.seal, signatures.sign, 'signed broadcasts originated/s (seal+encode)'),
    signatureRow('20b', signatures.check, signatures.verify, 'signed broadcasts verified/s (decode+verify)'),
    {
      benchmark: '20c unicast tag+verify/s, origin+destination with codec, v2 vs v1',
      nearmesh: `v2 ${formatPerSecond(v2Tag)} (${microseconds(v2Tag)}, +${addedUs.toFixed(1)} µs)`,
      baseline: `v1 ${formatPerSecond(v1Plain)} (${microseconds(v1Plain)})`,
      ratio: formatTimes(v2Tag / v1Plain),
      goal: '— (info; throughput: row 19)',
      pass: '—',
    },
  ];
}
