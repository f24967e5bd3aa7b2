// What an origin's authentication of a routed message covers (PROTOCOL.md §2.1): every field but those a
// relay changes on the way (ttl, the flood flag, an ANNOUNCE's hop proof), as one CBOR array in core
// deterministic form, so any implementation with a standard deterministic encoder rebuilds the same bytes.
import { PEER_ID_BYTES, writePeerId } from '../identity/peer-id.js';
import {
  MAJOR_ARRAY,
  MAJOR_BYTES,
  MAJOR_SIMPLE,
  MAJOR_TEXT,
  MAJOR_UINT,
  SIMPLE_NULL,
} from './cbor-constants.js';
import { headSize, writeHead } from './cbor-write.js';
import { hdrOf } from './envelope.js';
import { MessageFlag, MessageType, type RoutedMessage } from './messages.js';
import { utf8Length, writeUtf8 } from './utf8.js';

/** Domain separation: these bytes can never be taken for anything else an identity signs. */
export const ORIGIN_AUTH_CONTEXT = 'nearmesh/2 origin';
/**
 * The flag bits an origin vouches for: ack requested / relays / route lost (bit 0) and system (bit 2). The
 * flood bit is set by relays that lose the route; reserved bits are not the origin's to promise.
 */
export const AUTHENTICATED_FLAGS = MessageFlag.ackRequested | MessageFlag.system;
const FIELDS = 7;

/**
 * The bytes an origin's tag or signature covers: the deterministic CBOR array
 * ["nearmesh/2 origin", hdr, flags & AUTHENTICATED_FLAGS, id, body, src, dst], built in one buffer. body is
 * the DATA payload or the ANNOUNCE body as byte strings, null for an ACK.
 */
export function originAuthInput(message: RoutedMessage): Uint8Array {
  const route = message.route;
  if (route === undefined) throw new RangeError('only routed messages have an origin to authenticate');
  const flags = routedFlags(message) & AUTHENTICATED_FLAGS;
  const body = message.type === 'data' ? message.payload : message.type === 'announce' ? message.body : null;
  const contextBytes = utf8Length(ORIGIN_AUTH_CONTEXT);
  const hdr = hdrOf(MessageType[message.type]);
  const size =
    1 +
    headSize(contextBytes) +
    contextBytes +
    headSize(hdr) +
    headSize(flags) +
    headSize(message.id) +
    (body === null ? 1 : headSize(body.length) + body.length) +
    2 * (1 + PEER_ID_BYTES);
  const out = new Uint8Array(size);
  let pos = writeHead(out, 0, MAJOR_ARRAY, FIELDS);
  pos = writeUtf8(out, writeHead(out, pos, MAJOR_TEXT, contextBytes), ORIGIN_AUTH_CONTEXT);
  pos = writeHead(out, pos, MAJOR_UINT, hdr);
  pos = writeHead(out, pos, MAJOR_UINT, flags);
  pos = writeHead(out, pos, MAJOR_UINT, message.id);
  if (body === null) {
    out[pos++] = (MAJOR_SIMPLE << 5) | SIMPLE_NULL;
  } else {
    pos = writeHead(out, pos, MAJOR_BYTES, body.length);
    out.set(body, pos);
    pos += body.length;
  }
  pos = writePeerId(out, writeHead(out, pos, MAJOR_BYTES, PEER_ID_BYTES), route.source);
  writePeerId(out, writeHead(out, pos, MAJOR_BYTES, PEER_ID_BYTES), route.destination);
  return out;
}

/** The flags field a routed message carries (before relays touch the flood bit). */
function routedFlags(message: RoutedMessage): number {
  switch (message.type) {
    case 'data':
      return (
        (message.ackRequested ? MessageFlag.ackRequested : 0) |
        (message.system === true ? MessageFlag.system : 0)
      );
    case 'announce':
      return message.relays ? MessageFlag.relays : 0;
    case 'ack':
      return message.routeLost === true ? MessageFlag.routeLost : 0;
  }
}
