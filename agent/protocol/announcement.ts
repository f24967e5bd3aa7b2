// The ANNOUNCE body (PROTOCOL.md §13.2): what every agent floods about itself so the mesh knows its name,
// groups, neighbours, hop budget, capabilities, key epoch and revocation list digest.
// Carried as a byte string holding one CBOR item, so the envelope reader stays generic; validated here,
// once, where it enters.
import { isPeerId, PEER_ID_BYTES, peerIdFromBytes, peerIdToBytes } from '../core/peer-id.js';
import { MAX_TTL_HOPS } from './envelope.js';
import { DecodeError } from './errors.js';
import { decodeItem, encodeItem } from './item.js';

/** Longest agent or group name, in characters (as the config allows). */
export const MAX_ANNOUNCED_NAME_CHARS = 63;
/** Groups one agent may announce; more is a misconfiguration, not a mesh. */
export const MAX_ANNOUNCED_GROUPS = 32;
/** Neighbours one agent may announce: radios and sockets hold far fewer links. */
export const MAX_ANNOUNCED_NEIGHBOURS = 64;
/** Actions, and sensors, one agent may announce. */
export const MAX_ANNOUNCED_CAPABILITIES = 64;
/** A digest of an agent's revocation list, so neighbours notice they differ (§13.5). */
export const REVOCATION_DIGEST_BYTES = 8;

/** What an agent says it is: its board (the profile's or the device tree's model) and its software version. */
export interface AgentAbout {
  board: string;
  software: string;
}

/** What an agent offers the mesh (§14): the actions it runs and the sensors it reads. */
export interface Capabilities {
  actions: string[];
  sensors: { name: string; unit: string | null }[];
}

export interface Announcement {
  /** The originator's configured hop budget: a receiver's distance is initialTtl − ttl + 1. */
  initialTtl: number;
  name: string;
  groups: string[];
  /** Peer ids of the originator's direct links. */
  neighbours: string[];
  capabilities: Capabilities;
  /** The mesh key epoch the originator holds (§13.6): a neighbour behind it is handed the newer key. */
  keyEpoch: number;
  /** Digest of the originator's revocation list: a neighbour whose digest differs is sent the list. */
  revocationDigest: Uint8Array;
  /** What the originator runs on and which version (for people: web view, Home Assistant); optional. */
  about?: AgentAbout | undefined;
}

export function encodeAnnouncement(announcement: Announcement): Uint8Array {
  const { capabilities } = announcement;
  return encodeItem([
    announcement.initialTtl,
    announcement.name,
    announcement.groups,
    announcement.neighbours.map(peerIdToBytes),
    [capabilities.actions, capabilities.sensors.map((sensor) => [sensor.name, sensor.unit])],
    announcement.keyEpoch,
    announcement.revocationDigest,
    ...(announcement.about === undefined ? [] : [[announcement.about.board, announcement.about.software]]),
  ]);
}

/** Fields of the body, in order (`about` optional); elements after the last are for later versions and ignored. */
const BODY_FIELDS =
  '[initialTtl, name, groups, neighbours, capabilities, keyEpoch, revocationDigest, about?]';

export function decodeAnnouncement(bytes: Uint8Array): Announcement | DecodeError {
  const item = decodeItem(bytes, { floats: false });
  if (!item.ok) return item.error;
  const value = item.value;
  if (!Array.isArray(value) || value.length < 7) return bad(`is not ${BODY_FIELDS}`);
  const [initialTtl, name, groups, neighbours, rawCapabilities, keyEpoch, revocationDigest, rawAbout] =
    value as unknown[];
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
  const capabilities = decodeCapabilities(rawCapabilities);
  if (capabilities instanceof DecodeError) return capabilities;
  if (typeof keyEpoch !== 'number' || !Number.isSafeInteger(keyEpoch) || keyEpoch < 0) {
    return bad('keyEpoch is not an unsigned integer');
  }
  if (!(revocationDigest instanceof Uint8Array) || revocationDigest.length !== REVOCATION_DIGEST_BYTES) {
    return bad(`revocationDigest is not ${REVOCATION_DIGEST_BYTES} bytes`);
  }
  if (rawAbout !== undefined && !isAbout(rawAbout)) return bad('about is not [board, software]');
  return {
    initialTtl,
    name,
    groups: groups as string[],
    neighbours: (neighbours as Uint8Array[]).map(peerIdFromBytes),
    capabilities,
    keyEpoch,
    revocationDigest,
    ...(rawAbout !== undefined && { about: { board: rawAbout[0], software: rawAbout[1] } }),
  };
}

/** `[board, software]`: two texts of 1..63 characters; elements after them are for later versions. */
function isAbout(value: unknown): value is [string, string] {
  return Array.isArray(value) && value.length >= 2 && isName(value[0]) && isName(value[1]);
}

function decodeCapabilities(value: unknown): Capabilities | DecodeError {
  if (!Array.isArray(value) || value.length < 2) return bad('capabilities is not [actions, sensors]');
  const [actions, sensors] = value as unknown[];
  if (!Array.isArray(actions) || actions.length > MAX_ANNOUNCED_CAPABILITIES || !actions.every(isName)) {
    return bad(`actions is not a list of at most ${MAX_ANNOUNCED_CAPABILITIES} names`);
  }
  if (
    !Array.isArray(sensors) ||
    sensors.length > MAX_ANNOUNCED_CAPABILITIES ||
    !sensors.every(isSensorEntry)
  ) {
    return bad(`sensors is not a list of at most ${MAX_ANNOUNCED_CAPABILITIES} [name, unit] pairs`);
  }
  return {
    actions: actions as string[],
    sensors: (sensors as [string, string | null][]).map(([name, unit]) => ({ name, unit })),
  };
}

function isSensorEntry(value: unknown): boolean {
  return (
    Array.isArray(value) && value.length === 2 && isName(value[0]) && (value[1] === null || isName(value[1]))
  );
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
    announcement.neighbours.every(isPeerId) &&
    announcement.capabilities.actions.length <= MAX_ANNOUNCED_CAPABILITIES &&
    announcement.capabilities.actions.every(isName) &&
    announcement.capabilities.sensors.length <= MAX_ANNOUNCED_CAPABILITIES &&
    announcement.capabilities.sensors.every((sensor) => isSensorEntry([sensor.name, sensor.unit])) &&
    Number.isSafeInteger(announcement.keyEpoch) &&
    announcement.keyEpoch >= 0 &&
    announcement.revocationDigest instanceof Uint8Array &&
    announcement.revocationDigest.length === REVOCATION_DIGEST_BYTES &&
    (announcement.about === undefined || isAbout([announcement.about.board, announcement.about.software]))
  );
}

function isName(value: unknown): value is string {
  return typeof value === 'string' && value.length >= 1 && [...value].length <= MAX_ANNOUNCED_NAME_CHARS;
}

function bad(detail: string): DecodeError {
  return new DecodeError('bad-field', `ANNOUNCE body ${detail}`);
}
