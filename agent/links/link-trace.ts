// `trace <peer>`: the frames on the direct link to one peer, decoded into what a person debugging a
// link wants to see (type, id, flags, route, sizes, the kind of system DATA), never the
// payload's bytes. The link layer reports frames only while a tracer is attached (LinkManager.traceFrames).
import { NearmeshError, PeerUnreachableError } from '../core/errors.js';
import { decodeCoordination } from '../protocol/coordination.js';
import { DecodeError } from '../protocol/errors.js';
import type { Message } from '../protocol/index.js';
import { decodeQueued } from '../protocol/queued.js';
import { decodeStream } from '../protocol/stream.js';
import { type SystemService, systemServiceOf } from '../protocol/system-kind.js';
import { decodeTransfer } from '../protocol/transfer.js';
import { decodeTrust } from '../protocol/trust.js';
import type { LinkFrame, LinkManager } from './link-manager.js';

/** One frame on a direct link as `trace` streams it: the decoded message's fields, never payload bytes. */
export interface TraceEvent {
  at: string;
  peer: string;
  peer_name: string;
  /** out: this agent sent it; in: the peer did. */
  direction: 'out' | 'in';
  medium: string;
  type: 'DATA' | 'ACK' | 'PING' | 'PONG' | 'CLOSE' | 'ANNOUNCE' | 'ENDPOINTS' | 'CUTOVER' | 'SYNC';
  id?: number;
  /** ack (an ACK is requested), flood, system, relays. */
  flags: string[];
  /** Routed messages: originator, final recipient and hops left. */
  route?: { src: string; dst: string; ttl: number };
  /** DATA: the payload's size in bytes (its bytes are never shown). */
  size?: number;
  /** System DATA: its kind (call, result, time-request, queued, received, chunk, ...), or "malformed". */
  coordination?: string;
  /** ANNOUNCE: the announcing agent's name. */
  name?: string;
  /** CLOSE: its code and reason. */
  code?: number;
  reason?: string;
}

/** What `trace` answers before its events: the peer traced. */
export interface TraceStarted {
  peer: string;
  name: string;
}

const TYPE_NAMES: Record<Message['type'], TraceEvent['type']> = {
  data: 'DATA',
  ack: 'ACK',
  ping: 'PING',
  pong: 'PONG',
  close: 'CLOSE',
  announce: 'ANNOUNCE',
  endpoints: 'ENDPOINTS',
  cutover: 'CUTOVER',
  sync: 'SYNC',
};

/** The wire form of a traced frame; reads a DATA payload (for its size and kind) at once, keeps nothing of it. */
export function toTraceEvent(frame: LinkFrame): TraceEvent {
  const { message } = frame;
  const event: TraceEvent = {
    at: new Date(frame.atMs).toISOString(),
    peer: frame.peer,
    peer_name: frame.peerName,
    direction: frame.direction,
    medium: frame.medium,
    type: TYPE_NAMES[message.type],
    flags: [],
  };
  if ('id' in message) event.id = message.id;
  if (message.type === 'close') {
    event.code = message.code;
    event.reason = message.reason;
  }
  if (message.type === 'data' || message.type === 'ack' || message.type === 'announce') {
    if (message.type === 'data' && message.ackRequested) event.flags.push('ack');
    if (message.type !== 'announce' && message.flood === true) event.flags.push('flood');
    if (message.type === 'data' && message.system === true) event.flags.push('system');
    if (message.type === 'announce') {
      if (message.relays) event.flags.push('relays');
      event.name = message.announcement.name;
    }
    if (message.route !== undefined) {
      const { source, destination, ttlHops } = message.route;
      event.route = { src: source, dst: destination, ttl: ttlHops };
    }
  }
  if (message.type === 'data') {
    event.size = message.payload.byteLength;
    if (message.system === true) event.coordination = systemKindName(message.payload);
  }
  return event;
}

const SYSTEM_DECODERS: Record<SystemService, (payload: Uint8Array) => { kind: string } | DecodeError> = {
  coordination: decodeCoordination,
  queued: decodeQueued,
  transfer: decodeTransfer,
  stream: decodeStream,
  trust: decodeTrust,
};

/**
 * What a system DATA payload is (its coordination, reliable-message, transfer, stream or trust kind), or
 * "malformed".
 */
function systemKindName(payload: Uint8Array): string {
  const decoded = SYSTEM_DECODERS[systemServiceOf(payload)](payload);
  return decoded instanceof DecodeError ? 'malformed' : decoded.kind;
}

/**
 * Starts tracing the direct link to `reference` (a peer id or name): `listener` gets each frame until
 * `stop` is called. Throws for an unknown peer, an ambiguous name, or a peer without a direct link.
 */
export function traceLink(
  links: LinkManager,
  reference: string,
  listener: (event: TraceEvent) => void,
): TraceStarted & { stop: () => void } {
  const record = links.directory.resolve(reference);
  if (record === 'ambiguous')
    throw new PeerUnreachableError(reference, 'several peers have that name; use the peer id');
  if (record === undefined)
    throw new NearmeshError('not-linked', `no direct link to ${reference} (only direct links can be traced)`);
  if (record.connection?.isOpen !== true)
    throw new NearmeshError('not-linked', `no direct link to ${record.name} (${record.id}) right now`);
  const peer = record.id;
  const stop = links.traceFrames((frame) => {
    if (frame.peer === peer) listener(toTraceEvent(frame));
  });
  return { peer, name: record.name, stop };
}
