// Which service a system DATA payload is for, read from its first bytes without decoding it: every system
// payload is one CBOR array whose first element is a small uint naming its kind (PROTOCOL.md §13.5, §13.6, §14–§17).
export type SystemService = 'coordination' | 'queued' | 'transfer' | 'stream' | 'trust';

/** The kind of a system payload (the uint opening its array), or undefined when it does not start like one. */
export function systemKindOf(payload: Uint8Array): number | undefined {
  const head = payload[0];
  if (head === undefined) return undefined;
  // An array of 0..23 elements (0x80..0x97) or with a one-byte length (0x98 nn).
  const at = head >= 0x80 && head <= 0x97 ? 1 : head === 0x98 ? 2 : -1;
  if (at < 0) return undefined;
  const kind = payload[at];
  if (kind === undefined) return undefined;
  if (kind <= 0x17) return kind;
  return kind === 0x18 ? payload[at + 1] : undefined;
}

/** The service that handles a system payload of `kind`; coordination also gets what is unknown (it counts it). */
export function systemServiceOf(payload: Uint8Array): SystemService {
  const kind = systemKindOf(payload) ?? 0;
  if (kind >= 12 && kind <= 13) return 'queued';
  if (kind >= 16 && kind <= 23) return 'transfer';
  if (kind >= 24 && kind <= 29) return 'stream';
  if (kind >= 30 && kind <= 31) return 'trust';
  return 'coordination';
}

/** A system payload for this agent, over a direct link or through the mesh. */
export interface SystemMessage {
  readonly from: string;
  readonly payload: Uint8Array;
  /** Hops it travelled (1 over a direct link). */
  readonly hops: number;
  /** It came over the direct link to `from` (inside that link's Noise session), not routed. */
  readonly overDirectLink: boolean;
}

/** Where a service registers for the system payloads it owns. */
export interface SystemHandlers {
  register(service: SystemService, handler: (message: SystemMessage) => void): void;
}
