// Loads test/fixtures/protocol-vectors.json and converts its JSON message form (bytes as hex) to and
// from protocol Messages, for the vector, doc and fuzz tests.
import { readFileSync } from 'node:fs';
import {
  type Announcement,
  announceMessage,
  type DecodeErrorReason,
  type Message,
  type Route,
} from '../../../agent/protocol/index.js';

export interface JsonRoute {
  ttlHops: number;
  source: string;
  destination: string;
}

export interface JsonAnnouncement {
  initialTtl: number;
  name: string;
  groups: string[];
  neighbours: string[];
  capabilities: { actions: string[]; sensors: { name: string; unit: string | null }[] };
  keyEpoch: number;
  /** Hex. */
  revocationDigest: string;
  about?: { board: string; software: string };
}

/** A routed message's route and its origin's auth (hex). */
interface JsonRouting {
  route?: JsonRoute;
  auth?: string;
}

export type JsonMessage =
  | ({
      type: 'data';
      id: number;
      ackRequested: boolean;
      payload: string;
      flood?: boolean;
      system?: boolean;
    } & JsonRouting)
  | ({ type: 'ack'; id: number; flood?: boolean; routeLost?: boolean } & JsonRouting)
  | {
      type: 'announce';
      id: number;
      relays: boolean;
      announcement: JsonAnnouncement;
      route: JsonRoute;
      auth: string;
    }
  | { type: 'ping'; id: number }
  | { type: 'pong'; id: number }
  | { type: 'close'; code: number; reason: string }
  | { type: 'endpoints'; addresses: string[] }
  | { type: 'cutover'; id: number }
  /** Digests in hex. */
  | { type: 'sync'; digest: string; count: number; keyEpoch: number; revocationDigest: string };

export interface ProtocolVector {
  name: string;
  hex: string;
  /** The decoded message; absent for unknown-type and error vectors. */
  message?: JsonMessage;
  /** The message decodes from hex but does not encode back to it (ignored fields, reserved flags). */
  decodeOnly?: boolean;
  ignoredFields?: number;
  unknownType?: { typeCode: number; version: number };
  error?: DecodeErrorReason;
}

export const vectorsPath = new URL('../../fixtures/protocol-vectors.json', import.meta.url);

export function loadVectors(): ProtocolVector[] {
  return JSON.parse(readFileSync(vectorsPath, 'utf8')) as ProtocolVector[];
}

export function fromHex(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function routingFromJson(json: JsonRouting): { route?: Route; auth?: Uint8Array } {
  if (json.route === undefined) return {};
  return { route: { ...json.route }, ...(json.auth !== undefined && { auth: fromHex(json.auth) }) };
}

function announcementFromJson(json: JsonAnnouncement): Announcement {
  return {
    ...structuredClone(json),
    revocationDigest: fromHex(json.revocationDigest),
  };
}

export function messageFromJson(json: JsonMessage): Message {
  switch (json.type) {
    case 'data':
      return {
        type: 'data',
        id: json.id,
        ackRequested: json.ackRequested,
        payload: fromHex(json.payload),
        ...routingFromJson(json),
        ...(json.flood === true && { flood: true }),
        ...(json.system === true && { system: true }),
      };
    case 'ack':
      return {
        type: 'ack',
        id: json.id,
        ...routingFromJson(json),
        ...(json.flood === true && { flood: true }),
        ...(json.routeLost === true && { routeLost: true }),
      };
    case 'announce':
      return announceMessage({
        id: json.id,
        relays: json.relays,
        announcement: announcementFromJson(json.announcement),
        route: { ...json.route },
        auth: fromHex(json.auth),
      });
    case 'endpoints':
      return { type: 'endpoints', addresses: [...json.addresses] };
    case 'sync':
      return {
        ...json,
        digest: fromHex(json.digest),
        revocationDigest: fromHex(json.revocationDigest),
      };
    default:
      return { ...json };
  }
}
