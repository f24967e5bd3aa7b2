// The CBOR numbers the reader and the writer share (RFC 8949 §3): major types, the simple values v1
// knows, the indefinite-length marker and the nesting limit of docs/PROTOCOL.md §3.

/** Nesting limit: the v1 envelope needs 2 levels (CLOSE body); the rest is headroom for later fields. */
export const MAX_NESTING_DEPTH = 16;

export const MAJOR_UINT = 0;
export const MAJOR_NEGINT = 1;
export const MAJOR_BYTES = 2;
export const MAJOR_TEXT = 3;
export const MAJOR_ARRAY = 4;
export const MAJOR_MAP = 5;
export const MAJOR_TAG = 6;
export const MAJOR_SIMPLE = 7;

/** Additional info 31: indefinite length for major types 2–5, the break code for 7. */
export const INFO_INDEFINITE = 31;
/** Additional info of the simple values of major type 7. */
export const SIMPLE_FALSE = 20;
export const SIMPLE_TRUE = 21;
export const SIMPLE_NULL = 22;
export const SIMPLE_UNDEFINED = 23;
/** Additional info of the floats of major type 7 (half, single, double precision). */
export const INFO_FLOAT16 = 25;
export const INFO_FLOAT32 = 26;
export const INFO_FLOAT64 = 27;
