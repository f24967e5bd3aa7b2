// UTF-8 for CBOR text strings: a validator that accepts exactly what a fatal TextDecoder accepts (so a
// text item in an ignored field is checked without building a string), and the encoder's size and writer.

// fatal: text was validated first, but a decoder that cannot silently substitute U+FFFD is the safe default.
// ignoreBOM: a leading U+FEFF is content, and stripping it would break the round trip.
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * True if bytes[start, end) is well-formed UTF-8 per Unicode Table 3-7, the rule TextDecoder applies:
 * no overlong forms, no surrogates (ED A0..BF), nothing above U+10FFFF, no stray continuation bytes.
 */
export function isWellFormedUtf8(bytes: Uint8Array, start: number, end: number): boolean {
  let i = start;
  while (i < end) {
    const lead = bytes[i] as number;
    if (lead < 0x80) {
      i++;
      continue;
    }
    if (lead < 0xc2) return false; // a continuation byte, or C0/C1 (always overlong)
    if (lead < 0xe0) {
      if (i + 1 >= end || !isContinuation(bytes[i + 1] as number)) return false;
      i += 2;
      continue;
    }
    if (lead < 0xf0) {
      if (i + 2 >= end) return false;
      const second = bytes[i + 1] as number;
      // E0 needs A0.. (else overlong); ED needs ..9F (else a surrogate).
      const low = lead === 0xe0 ? 0xa0 : 0x80;
      const high = lead === 0xed ? 0x9f : 0xbf;
      if (second < low || second > high || !isContinuation(bytes[i + 2] as number)) return false;
      i += 3;
      continue;
    }
    if (lead < 0xf5) {
      if (i + 3 >= end) return false;
      const second = bytes[i + 1] as number;
      // F0 needs 90.. (else overlong); F4 needs ..8F (else above U+10FFFF).
      const low = lead === 0xf0 ? 0x90 : 0x80;
      const high = lead === 0xf4 ? 0x8f : 0xbf;
      if (second < low || second > high) return false;
      if (!isContinuation(bytes[i + 2] as number) || !isContinuation(bytes[i + 3] as number)) return false;
      i += 4;
      continue;
    }
    return false; // F5..FF never appear in UTF-8
  }
  return true;
}

function isContinuation(byte: number): boolean {
  return (byte & 0xc0) === 0x80;
}

/** The string in bytes[start, end), which isWellFormedUtf8 has accepted. */
export function decodeUtf8(bytes: Uint8Array, start: number, end: number): string {
  return decoder.decode(bytes.subarray(start, end));
}

/** Bytes `text` takes as UTF-8, or -1 if it holds a lone surrogate (which UTF-8 cannot express). */
export function utf8Length(text: string): number {
  let length = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) length += 1;
    else if (unit < 0x800) length += 2;
    else if (unit < 0xd800 || unit > 0xdfff) length += 3;
    else if (unit <= 0xdbff && isLowSurrogate(text.charCodeAt(i + 1))) {
      length += 4;
      i++;
    } else return -1;
  }
  return length;
}

/** Writes `text` (checked by utf8Length) as UTF-8 at `pos`; returns the position after it. */
export function writeUtf8(out: Uint8Array, pos: number, text: string): number {
  for (let i = 0; i < text.length; i++) {
    let point = text.charCodeAt(i);
    if (point < 0x80) {
      out[pos++] = point;
      continue;
    }
    if (point < 0x800) {
      out[pos++] = 0xc0 | (point >> 6);
    } else {
      if (point >= 0xd800 && point <= 0xdbff) {
        point = 0x10000 + ((point - 0xd800) << 10) + (text.charCodeAt(++i) - 0xdc00);
        out[pos++] = 0xf0 | (point >> 18);
        out[pos++] = 0x80 | ((point >> 12) & 0x3f);
      } else {
        out[pos++] = 0xe0 | (point >> 12);
      }
      out[pos++] = 0x80 | ((point >> 6) & 0x3f);
    }
    out[pos++] = 0x80 | (point & 0x3f);
  }
  return pos;
}

function isLowSurrogate(unit: number): boolean {
  return unit >= 0xdc00 && unit <= 0xdfff;
}
