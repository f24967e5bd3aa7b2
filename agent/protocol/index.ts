// The wire protocol v2: the only place that knows how messages look on the wire. Pure functions, no I/O;
// docs/PROTOCOL.md is the specification and test/fixtures/protocol-vectors.json its test vectors.

export {
  type AgentAbout,
  type Announcement,
  type Capabilities,
  decodeAnnouncement,
  encodeAnnouncement,
} from './announcement.js';
export {
  MAX_ENCODED_MESSAGE_BYTES,
  MAX_MESSAGE_ID,
  MAX_TTL_HOPS,
  ORIGIN_SIGNATURE_AUTH_BYTES,
  ORIGIN_TAG_BYTES,
  PROTOCOL_VERSION,
  type Route,
} from './envelope.js';
export { DecodeError, type DecodeErrorReason, EncodeError } from './errors.js';
export { type CborValue, decodeItem, encodeItem } from './item.js';
export {
  announceMessage,
  CloseCode,
  type DecodeOptions,
  type DecodeResult,
  decodeMessage,
  encodeMessage,
  encodeMessageParts,
  MAX_DATA_OVERHEAD_BYTES,
  MAX_ROUTED_DATA_OVERHEAD_BYTES,
  type Message,
  MessageFlag,
  MessageType,
  type RoutedMessage,
  SYNC_DIGEST_BYTES,
  type SyncMessage,
} from './messages.js';
