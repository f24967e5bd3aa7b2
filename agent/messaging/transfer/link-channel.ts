// Bulk transfer's channel over the agent's links: every transfer message is reliable system DATA to the peer
// (a direct link, else the mesh). Small control messages take whatever link is up; CHUNKs (the bulk) go only
// while the peer's traffic is on Wi-Fi, unless the transfer allows BLE: a CHUNK that may not go fails the
// attempt (resumable) and the transfer waits for Wi-Fi.

import type { Medium } from '../../../transports/transport.js';
import { NearmeshError } from '../../core/errors.js';
import { SYSTEM_ACK_TIMEOUT_MS } from '../../core/pending-acks.js';
import { chunkTransferId } from '../../protocol/transfer.js';
import type { TransferChannel } from './channel.js';

/**
 * Chunks in flight anywhere but a direct Wi-Fi link. A message's timeout runs from when it is queued:
 * 16 × 60 KiB behind each other on a 30 KB/s BLE link would wait ~30 s, and the last ones time out; one
 * 60 KiB chunk at a time needs only 4 KB/s, and its round trip is small next to its time on the air.
 */
export const SLOW_LINK_WINDOW = 1;

/** A CHUNK held back: the peer is not on Wi-Fi and the transfer does not allow slower media. */
export class WaitingForWifiError extends NearmeshError {
  constructor(readonly peer: string) {
    super(
      'waiting-for-wifi',
      `bulk data to ${peer} waits for a Wi-Fi link (push --allow-ble sends over BLE too)`,
    );
  }
}

export interface LinkTransferChannelOptions {
  send: (peer: string, payload: Uint8Array, timeoutMs: number) => Promise<unknown>;
  /** The medium carrying the peer's traffic over a direct link; undefined when only the mesh reaches it. */
  mediumOf: (peer: string) => Medium | undefined;
  /** Transfers allowed to send their chunks over media other than Wi-Fi. */
  allowsSlowMedia: (transferId: string) => boolean;
  /** Largest payload over a direct Wi-Fi link. */
  maxPayloadBytes: number;
  /** Largest payload over anything else: BLE, or the mesh (which may cross BLE). */
  routedPayloadBytes: number;
}

export class LinkTransferChannel implements TransferChannel {
  readonly maxPayloadBytes: number;

  constructor(private readonly options: LinkTransferChannelOptions) {
    this.maxPayloadBytes = options.maxPayloadBytes;
  }

  payloadLimit(peer: string): number {
    return this.options.mediumOf(peer) === 'wifi'
      ? this.options.maxPayloadBytes
      : Math.min(this.options.maxPayloadBytes, this.options.routedPayloadBytes);
  }

  windowLimit(peer: string): number {
    return this.options.mediumOf(peer) === 'wifi' ? Number.POSITIVE_INFINITY : SLOW_LINK_WINDOW;
  }

  async send(peer: string, payload: Uint8Array): Promise<void> {
    const transferId = chunkTransferId(payload);
    if (
      transferId !== undefined &&
      this.options.mediumOf(peer) !== 'wifi' &&
      !this.options.allowsSlowMedia(transferId)
    ) {
      throw new WaitingForWifiError(peer);
    }
    await this.options.send(peer, payload, SYSTEM_ACK_TIMEOUT_MS);
  }
}
