// The private discovery hint (PROTOCOL.md §10.1): what BLE advertisements and mDNS records carry in place of a
// peer id, so that only holders of an accepted mesh key learn who is there. Pure bytes over node:crypto.
import { createHmac, hkdfSync, randomBytes } from 'node:crypto';

/** HKDF-SHA256 info string: the hint key is HKDF(mesh key, empty salt, this, 32 bytes). */
export const DISCOVERY_HINT_INFO = 'nearmesh/2 discovery hint';
/**
 * Zero bytes after the id: a hint opens under a key when they unmask to zero, so a foreign mesh's hint opens
 * by chance with probability 2^-32 per key tried.
 */
export const HINT_CHECK_BYTES = 4;
const HINT_KEY_BYTES = 32;
/** The id is at most a whole peer id; with the check that stays within HMAC-SHA256's 32 bytes of mask. */
const PEER_ID_BYTES = 8;

/** How one medium lays a hint out: nonce ‖ (id prefix ‖ check) XOR mask. */
export interface HintLayout {
  /** Fresh random bytes per hint; their reuse is what could link two hints. */
  nonceBytes: number;
  /** Leading bytes of the peer id a member learns (8: all of it). */
  idBytes: number;
}

/** A hint that opened under one of our keys. */
export interface OpenedHint {
  /** The peer id's first idBytes bytes as lowercase hex (the whole id when idBytes is 8). */
  peerId: string;
  /** Which of meshKeys() opened it: 0 is the current key, higher ones older keys still accepted. */
  keyIndex: number;
}

/** Whether `text` is a peer id as hints carry it: 16 lowercase hex (the transports' own check, not agent/identity's). */
export function isHintPeerId(text: string): boolean {
  return /^[0-9a-f]{16}$/.test(text);
}

/** The hint's length in bytes for this layout. */
export function hintBytes(layout: HintLayout): number {
  return layout.nonceBytes + layout.idBytes + HINT_CHECK_BYTES;
}

/** The hint key of one mesh key: what is actually used, so the mesh key itself never keys an HMAC here. */
export function hintKey(meshKey: Uint8Array): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', meshKey, new Uint8Array(0), DISCOVERY_HINT_INFO, HINT_KEY_BYTES));
}

/**
 * Seals the peer id under the current mesh key (meshKeys()[0]) with a fresh random nonce, or the given one
 * (tests and vectors). Throws RangeError on a bad layout, peer id or nonce, or an empty key list.
 */
export function sealHint(
  meshKeys: () => readonly Uint8Array[],
  peerId: string,
  layout: HintLayout,
  nonce: Uint8Array = randomBytes(layout.nonceBytes),
): Uint8Array {
  checkLayout(layout);
  if (!isHintPeerId(peerId)) throw new RangeError(`not a peer id: ${JSON.stringify(peerId)}`);
  if (nonce.length !== layout.nonceBytes) {
    throw new RangeError(`nonce must be ${layout.nonceBytes} bytes, got ${nonce.length}`);
  }
  const [currentKey] = meshKeys();
  if (currentKey === undefined) throw new RangeError('no mesh key to seal a discovery hint with');
  const payload = new Uint8Array(layout.idBytes + HINT_CHECK_BYTES);
  payload.set(Buffer.from(peerId, 'hex').subarray(0, layout.idBytes));
  const hint = new Uint8Array(hintBytes(layout));
  hint.set(nonce);
  hint.set(xor(payload, mask(hintKey(currentKey), nonce)), layout.nonceBytes);
  return hint;
}

/**
 * Opens a hint with each accepted key in turn (current first); undefined when none opens it: another mesh,
 * or not a hint of this layout at all. Never throws on the hint's bytes.
 */
export function openHint(
  meshKeys: () => readonly Uint8Array[],
  hint: Uint8Array,
  layout: HintLayout,
): OpenedHint | undefined {
  checkLayout(layout);
  if (hint.length !== hintBytes(layout)) return undefined;
  const nonce = hint.subarray(0, layout.nonceBytes);
  const masked = hint.subarray(layout.nonceBytes);
  const keys = meshKeys();
  for (let keyIndex = 0; keyIndex < keys.length; keyIndex++) {
    const payload = xor(masked, mask(hintKey(keys[keyIndex] as Uint8Array), nonce));
    if (payload.subarray(layout.idBytes).every((byte) => byte === 0)) {
      const peerId = Buffer.from(payload.subarray(0, layout.idBytes)).toString('hex');
      return { peerId, keyIndex };
    }
  }
  return undefined;
}

function mask(key: Uint8Array, nonce: Uint8Array): Uint8Array {
  return createHmac('sha256', key).update(nonce).digest();
}

function xor(data: Uint8Array, pad: Uint8Array): Uint8Array {
  return data.map((byte, i) => byte ^ (pad[i] ?? 0));
}

function checkLayout({ nonceBytes, idBytes }: HintLayout): void {
  if (!Number.isInteger(nonceBytes) || nonceBytes < 1) throw new RangeError(`bad nonce size ${nonceBytes}`);
  if (!Number.isInteger(idBytes) || idBytes < 1 || idBytes > PEER_ID_BYTES) {
    throw new RangeError(`bad id size ${idBytes}`);
  }
}
