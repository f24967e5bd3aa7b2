// Rendezvous records (PROTOCOL.md §19): what an agent leaves, retained, on the site's MQTT broker so agents on
// other subnets can find it. The broker sees a topic of two opaque hex strings and sealed bytes; the record
// inside, signed by the agent's identity key, says where it accepts links.
//
//   record = ["nearmesh/2 rendezvous", publicKey: bstr 32, name: tstr, endpoints: [tstr, ...],
//             issuedAtMs: uint, ttlS: uint, signature: bstr 64]
//   signed = ["nearmesh/2 rendezvous", tag: bstr 16, publicKey, name, endpoints, issuedAtMs, ttlS]
import { checkHostPort } from '../core/host-port.js';
import { encodeCbor } from './cbor-write.js';
import { DecodeError, EncodeError } from './errors.js';
import { isBytes, isInRange, isUint, textLengthProblem } from './fields.js';
import { decodeItem } from './item.js';

export const RENDEZVOUS_CONTEXT = 'nearmesh/2 rendezvous';
export const RENDEZVOUS_TAG_BYTES = 16;
/** Where an agent accepts links: its interfaces, a few times over. */
export const MAX_RENDEZVOUS_ENDPOINTS = 8;
const MAX_ENDPOINT_BYTES = 64;
const MAX_NAME_BYTES = 64;
const KEY_BYTES = 32;
const SIGNATURE_BYTES = 64;
/** A record lives between 10 s and a day without a refresh. */
export const MIN_RENDEZVOUS_TTL_S = 10;
export const MAX_RENDEZVOUS_TTL_S = 86_400;

export interface RendezvousClaims {
  publicKey: Uint8Array;
  name: string;
  /** "host:port" / "[v6]:port" where the agent accepts links. */
  endpoints: string[];
  issuedAtMs: number;
  ttlS: number;
}

export interface RendezvousRecord extends RendezvousClaims {
  signature: Uint8Array;
}

/** What the agent's signature covers: the claims, bound to the mesh (its tag). */
export function encodeRendezvousSigned(tag: Uint8Array, claims: RendezvousClaims): Uint8Array {
  checkClaims(claims);
  if (!isBytes(tag, RENDEZVOUS_TAG_BYTES)) throw new EncodeError('the mesh tag is not 16 bytes');
  return encodeCbor([
    RENDEZVOUS_CONTEXT,
    tag,
    claims.publicKey,
    claims.name,
    claims.endpoints,
    claims.issuedAtMs,
    claims.ttlS,
  ]);
}

export function encodeRendezvousRecord(record: RendezvousRecord): Uint8Array {
  checkClaims(record);
  if (!isBytes(record.signature, SIGNATURE_BYTES)) throw new EncodeError('the signature is not 64 bytes');
  return encodeCbor([
    RENDEZVOUS_CONTEXT,
    record.publicKey,
    record.name,
    record.endpoints,
    record.issuedAtMs,
    record.ttlS,
    record.signature,
  ]);
}

export function decodeRendezvousRecord(bytes: Uint8Array): RendezvousRecord | DecodeError {
  const item = decodeItem(bytes, { floats: false });
  if (!item.ok) return item.error;
  if (!Array.isArray(item.value) || item.value.length !== 7) return bad('is not an array of 7');
  const [context, publicKey, name, endpoints, issuedAtMs, ttlS, signature] = item.value as unknown[];
  if (context !== RENDEZVOUS_CONTEXT) return bad('context is not "nearmesh/2 rendezvous"');
  if (!isBytes(publicKey, KEY_BYTES)) return bad('public key is not 32 bytes');
  if (!isName(name)) return bad(`name is not 1..${MAX_NAME_BYTES} bytes of text`);
  if (!isEndpointList(endpoints))
    return bad(`endpoints is not a list of at most ${MAX_RENDEZVOUS_ENDPOINTS} "host:port"`);
  if (!isUint(issuedAtMs)) return bad('issuedAtMs is not a uint');
  if (!isInRange(ttlS, MIN_RENDEZVOUS_TTL_S, MAX_RENDEZVOUS_TTL_S))
    return bad(`ttlS is not within ${MIN_RENDEZVOUS_TTL_S}..${MAX_RENDEZVOUS_TTL_S}`);
  if (!isBytes(signature, SIGNATURE_BYTES)) return bad('signature is not 64 bytes');
  return { publicKey, name, endpoints, issuedAtMs, ttlS, signature };
}

function checkClaims(claims: RendezvousClaims): void {
  if (!isBytes(claims.publicKey, KEY_BYTES)) throw new EncodeError('the public key is not 32 bytes');
  if (!isName(claims.name)) throw new EncodeError(`the name is not 1..${MAX_NAME_BYTES} bytes of text`);
  if (!isEndpointList(claims.endpoints))
    throw new EncodeError(`endpoints is not a list of at most ${MAX_RENDEZVOUS_ENDPOINTS} "host:port"`);
  if (!isUint(claims.issuedAtMs)) throw new EncodeError('issuedAtMs is not a uint');
  if (!isInRange(claims.ttlS, MIN_RENDEZVOUS_TTL_S, MAX_RENDEZVOUS_TTL_S))
    throw new EncodeError(`ttlS is not within ${MIN_RENDEZVOUS_TTL_S}..${MAX_RENDEZVOUS_TTL_S}`);
}

function isName(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && textLengthProblem(value, MAX_NAME_BYTES) === null;
}

function isEndpointList(value: unknown): value is string[] {
  return (
    Array.isArray(value) &&
    value.length <= MAX_RENDEZVOUS_ENDPOINTS &&
    value.every(
      (endpoint) =>
        typeof endpoint === 'string' &&
        textLengthProblem(endpoint, MAX_ENDPOINT_BYTES) === null &&
        checkHostPort(endpoint).ok,
    )
  );
}

function bad(detail: string): DecodeError {
  return new DecodeError('bad-field', `rendezvous record: ${detail}`);
}
