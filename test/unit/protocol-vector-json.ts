// Loads test/fixtures/protocol-vectors.json and converts its JSON message form (bytes as hex) to and
// from protocol Messages, for the vector, doc and fuzz tests.
import { readFileSync } from 'node:fs';
import type { DecodeErrorReason, Message, Route } from '../../agent/protocol/index.js';

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
}

export type JsonMessage =
  | { type: 'data'; id: number; ackRequested: boolean; payload: string; route?: JsonRoute; flood?: boolean }
  | { type: 'ack'; id: number; route?: JsonRoute; flood?: boolean }
  | { type: 'announce'; id: number; relays: boolean; announcement: JsonAnnouncement; route: JsonRoute }
  | { type: 'ping'; id: number }
  | { type: 'pong'; id: number }
  | { type: 'close'; code: number; reason: string }
  | { type: 'endpoints'; addresses: string[] }
  | { type: 'cutover'; id: number };

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

export const vectorsPath = new URL('../fixtures/protocol-vectors.json', import.meta.url);

export function loadVectors(): ProtocolVector[] {
  return JSON.parse(readFileSync(vectorsPath, 'utf8')) as ProtocolVector[];
}

export function fromHex(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function routeFromJson(route: JsonRoute | undefined): { route?: Route } {
  return route === undefined ? {} : { route: { ...route } };
}

export function messageFromJson(json: JsonMessage): Message {
  switch (json.type) {
    case 'data':
      return {
        type: 'data',
        id: json.id,
        ackRequested: json.ackRequested,
        payload: fromHex(json.payload),
        ...routeFromJson(json.route),
        ...(json.flood === true && { flood: true }),
      };
    case 'ack':
      return {
        type: 'ack',
        id: json.id,
        ...routeFromJson(json.route),
        ...(json.flood === true && { flood: true }),
      };
    case 'announce':
      return {
        type: 'announce',
        id: json.id,
        relays: json.relays,
        announcement: { ...json.announcement },
        route: { ...json.route },
      };
    case 'endpoints':
      return { type: 'endpoints', addresses: [...json.addresses] };
    default:
      return { ...json };
  }
}
