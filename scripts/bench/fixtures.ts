// The message contents the codec benchmarks compare: one small sensor DATA, link-local and routed,
// as a nearmesh Message and as the JSON document a naive protocol would send for the same content.
import type { Message } from '../../agent/protocol/index.js';

/** A sensor reading as a sensor would send it: 10 bytes of UTF-8 text. */
export const SENSOR_PAYLOAD_TEXT = '{"t":21.5}';
const SENSOR_PAYLOAD = new TextEncoder().encode(SENSOR_PAYLOAD_TEXT);
const MESSAGE_ID = 1234;
const ROUTE_TTL_HOPS = 5;
/** Fixed peer ids (16 hex characters, as every peer id): sizes must not vary between runs. */
const SOURCE_PEER_ID = '3f9a61c2d04b7e15';
const DESTINATION_PEER_ID = 'b81e0c7d92a4f3e6';
/** A routed unicast carries its origin's 16-byte tag (PROTOCOL.md §2.1); this is the §2.1 vector's. */
const ORIGIN_TAG_HEX = '1d70509c7f2be7f13f1cde863d031780';

/** The JSON a naive protocol would use; `payload` is a string (text or base64, see codec-bench). */
export interface JsonDataMessage {
  readonly v: 1;
  readonly type: 'data';
  readonly ack: boolean;
  readonly id: number;
  readonly payload: string;
  readonly ttl?: number;
  readonly src?: string;
  readonly dst?: string;
  /** The origin's tag, as hex (as the peer ids). */
  readonly auth?: string;
}

export interface SampleContent {
  readonly label: string;
  readonly message: Message;
  readonly json: JsonDataMessage;
}

export const LINK_LOCAL_SAMPLE: SampleContent = {
  label: 'link-local DATA',
  message: { type: 'data', id: MESSAGE_ID, ackRequested: true, payload: SENSOR_PAYLOAD },
  json: { v: 1, type: 'data', ack: true, id: MESSAGE_ID, payload: SENSOR_PAYLOAD_TEXT },
};

export const ROUTED_SAMPLE: SampleContent = {
  label: 'routed DATA',
  message: {
    type: 'data',
    id: MESSAGE_ID,
    ackRequested: true,
    payload: SENSOR_PAYLOAD,
    route: { ttlHops: ROUTE_TTL_HOPS, source: SOURCE_PEER_ID, destination: DESTINATION_PEER_ID },
    auth: Uint8Array.from(Buffer.from(ORIGIN_TAG_HEX, 'hex')),
  },
  json: {
    v: 1,
    type: 'data',
    ack: true,
    id: MESSAGE_ID,
    payload: SENSOR_PAYLOAD_TEXT,
    ttl: ROUTE_TTL_HOPS,
    src: SOURCE_PEER_ID,
    dst: DESTINATION_PEER_ID,
    auth: ORIGIN_TAG_HEX,
  },
};
