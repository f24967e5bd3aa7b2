// The ANNOUNCE body (PROTOCOL.md §13): what every agent floods about itself so the mesh knows its name,
// groups, neighbours and hop budget. Carried as a byte string holding one CBOR item, so the envelope
// reader stays generic; validated here, once, where it enters.
import { isPeerId, PEER_ID_BYTES, peerIdFromBytes, peerIdToBytes } from '../identity/peer-id.js';
import { MAX_TTL_HOPS } from './envelope.js';
import { DecodeError } from './errors.js';
import { decodeItem, encodeItem } from './item.js';

/** Longest agent or group name, in characters (as the config allows). */
export const MAX_ANNOUNCED_NAME_CHARS = 63;
/** Groups one agent may announce; more is a misconfiguration, not a mesh. */
export const MAX_ANNOUNCED_GROUPS = 32;
/** Neighbours one agent may announce: radios and sockets hold far fewer links. */
export const MAX_ANNOUNCED_NEIGHBOURS = 64;

export interface Announcement {
  /** The originator's configured hop budget: a receiver's distance is initialTtl − ttl + 1. */
  initialTtl: number;
  name: string;
  groups: string[];
  /** Peer ids of the originator's direct links. */
  neighbours: string[];
}

export function encodeAnnouncement(announcement: Announcement): Uint8Array {
  return encodeItem([
    announcement.initialTtl,
    announcement.name,
    announcement.groups,
    announcement.neighbours.map(peerIdToBytes),
  ]);
}

export function decodeAnnouncement(bytes: Uint8Array): Announcement | DecodeError {
  const item = decodeItem(bytes);
  if (!item.ok) return item.error;
  const value = item.value;
  if (!Array.isArray(value) || value.length !== 4)
    return bad('is not [initialTtl, name, groups, neighbours]');
  const [initialTtl, name, groups, neighbours] = value as unknown[];
  if (
    typeof initialTtl !== 'number' ||
    !Number.isInteger(initialTtl) ||
    initialTtl < 1 ||
    initialTtl > MAX_TTL_HOPS
  ) {
    return bad(`initialTtl is not an integer in 1..${MAX_TTL_HOPS}`);
  }
  if (!isName(name)) return bad(`name is not 1..${MAX_ANNOUNCED_NAME_CHARS} characters`);
  if (!Array.isArray(groups) || groups.length > MAX_ANNOUNCED_GROUPS || !groups.every(isName)) {
    return bad(`groups is not a list of at most ${MAX_ANNOUNCED_GROUPS} names`);
  }
  if (
    !Array.isArray(neighbours) ||
    neighbours.length > MAX_ANNOUNCED_NEIGHBOURS ||
    !neighbours.every((id) => id instanceof Uint8Array && id.length === PEER_ID_BYTES)
  ) {
    return bad(`neighbours is not a list of at most ${MAX_ANNOUNCED_NEIGHBOURS} peer ids`);
  }
  return {
    initialTtl,
    name,
    groups: groups as string[],
    neighbours: (neighbours as Uint8Array[]).map(peerIdFromBytes),
  };
}

/** Checks an announcement before it is encoded: a bug in the caller, not bad input. */
export function isValidAnnouncement(announcement: Announcement): boolean {
  return (
    Number.isInteger(announcement.initialTtl) &&
    announcement.initialTtl >= 1 &&
    announcement.initialTtl <= MAX_TTL_HOPS &&
    isName(announcement.name) &&
    announcement.groups.length <= MAX_ANNOUNCED_GROUPS &&
    announcement.groups.every(isName) &&
    announcement.neighbours.length <= MAX_ANNOUNCED_NEIGHBOURS &&
    announcement.neighbours.every(isPeerId)
  );
}

function isName(value: unknown): value is string {
  return typeof value === 'string' && value.length >= 1 && [...value].length <= MAX_ANNOUNCED_NAME_CHARS;
}

function bad(detail: string): DecodeError {
  return new DecodeError('bad-field', `ANNOUNCE body ${detail}`);
}
