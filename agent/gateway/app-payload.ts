// Payloads of the coordination topics: JSON by default, CBOR when an MQTT 5 client says so with the
// content type `application/cbor`. Decoding never throws: a bad payload is a message for an error reply.
import { decodeJsonCbor, encodeJsonCbor, type JsonValue } from '../protocol/json-cbor.js';
import type { PublishProperties } from './session-store.js';

export const JSON_CONTENT_TYPE = 'application/json';
export const CBOR_CONTENT_TYPE = 'application/cbor';

export type PayloadFormat = 'json' | 'cbor';

export type Decoded = { ok: true; value: JsonValue } | { ok: false; message: string };

/** CBOR when the publisher's content type says so (MQTT 5 only), JSON otherwise. */
export function formatOf(properties: PublishProperties | undefined): PayloadFormat {
  return properties?.contentType?.trim().toLowerCase() === CBOR_CONTENT_TYPE ? 'cbor' : 'json';
}

export function contentTypeOf(format: PayloadFormat): string {
  return format === 'cbor' ? CBOR_CONTENT_TYPE : JSON_CONTENT_TYPE;
}

export function decodePayload(payload: Uint8Array, format: PayloadFormat): Decoded {
  if (format === 'cbor') {
    const value = decodeJsonCbor(payload);
    return value instanceof Error
      ? { ok: false, message: `not CBOR of a JSON value: ${value.message}` }
      : { ok: true, value };
  }
  try {
    return { ok: true, value: JSON.parse(Buffer.from(payload).toString('utf8')) as JsonValue };
  } catch (error) {
    return { ok: false, message: `not JSON: ${error instanceof Error ? error.message : String(error)}` };
  }
}

export function encodePayload(value: JsonValue, format: PayloadFormat): Buffer {
  return format === 'cbor' ? Buffer.from(encodeJsonCbor(value)) : Buffer.from(JSON.stringify(value));
}

export function isJsonObject(value: JsonValue | undefined): value is { [key: string]: JsonValue } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The value of an MQTT 5 user property (the last one when it is repeated). */
export function userProperty(properties: PublishProperties | undefined, name: string): string | undefined {
  const value = properties?.userProperties?.[name];
  return Array.isArray(value) ? value.at(-1) : value;
}
