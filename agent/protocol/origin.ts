// What an origin's authentication of a routed message covers (PROTOCOL.md §2.1): every field but those a
// relay changes on the way (ttl and the flood flag), as one CBOR array in core deterministic form, so any
// implementation with a standard deterministic encoder rebuilds the same bytes.
import { PEER_ID_BYTES, writePeerId } from '../core/peer-id.js';
import { MAJOR_ARRAY, MAJOR_BYTES, MAJOR_UINT } from './cbor-constants.js';
import { bytesSize, encodeCbor, headSize, writeBytes, writeHead, writeNull } from './cbor-write.js';
import { hdrOf } from './envelope.js';
import { flagsOf, MessageFlag, MessageType, type RoutedMessage } from './messages.js';

/** Domain separation: these bytes can never be taken for anything else an identity signs. */
export const ORIGIN_AUTH_CONTEXT = 'nearmesh/2 origin';
/**
 * The flag bits an origin vouches for: ack requested / relays / route lost (bit 0) and system (bit 2). The
 * flood bit is set by relays that lose the route; reserved bits are not the origin's to promise.
 */
export const AUTHENTICATED_FLAGS = MessageFlag.ackRequested | MessageFlag.system;
const FIELDS = 7;
/** What every input starts with: the array head and the context string, encoded once. */
const INPUT_PREFIX = inputPrefix();

function inputPrefix(): Uint8Array {
  const context = encodeCbor(ORIGIN_AUTH_CONTEXT);
  const prefix = new Uint8Array(headSize(FIELDS) + context.length);
  prefix.set(context, writeHead(prefix, 0, MAJOR_ARRAY, FIELDS));
  return prefix;
}

/**
 * The bytes an origin's tag or signature covers: the deterministic CBOR array
 * ["nearmesh/2 origin", hdr, flags & AUTHENTICATED_FLAGS, id, body, src, dst], built in one buffer. body is
 * the DATA payload or the ANNOUNCE body as byte strings, null for an ACK.
 */
export function originAuthInput(message: RoutedMessage): Uint8Array {
  const route = message.route;
  if (route === undefined) throw new RangeError('only routed messages have an origin to authenticate');
  const flags = flagsOf(message) & AUTHENTICATED_FLAGS;
  const body = message.type === 'data' ? message.payload : message.type === 'announce' ? message.body : null;
  const hdr = hdrOf(MessageType[message.type]);
  const size =
    INPUT_PREFIX.length +
    headSize(hdr) +
    headSize(flags) +
    headSize(message.id) +
    (body === null ? 1 : bytesSize(body.length)) +
    2 * (1 + PEER_ID_BYTES);
  const out = new Uint8Array(size);
  out.set(INPUT_PREFIX, 0);
  let pos = writeHead(out, INPUT_PREFIX.length, MAJOR_UINT, hdr);
  pos = writeHead(out, pos, MAJOR_UINT, flags);
  pos = writeHead(out, pos, MAJOR_UINT, message.id);
  pos = body === null ? writeNull(out, pos) : writeBytes(out, pos, body);
  pos = writePeerId(out, writeHead(out, pos, MAJOR_BYTES, PEER_ID_BYTES), route.source);
  writePeerId(out, writeHead(out, pos, MAJOR_BYTES, PEER_ID_BYTES), route.destination);
  return out;
}
