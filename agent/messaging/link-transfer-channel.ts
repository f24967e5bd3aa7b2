// Bulk transfer's channel over the agent's links: every transfer message is reliable system DATA to the peer
// (a direct link, else the mesh). Small control messages take whatever link is up; CHUNKs (the bulk) go only
// while the peer's traffic is on Wi-Fi, unless the transfer allows BLE: a CHUNK that may not go fails the
// attempt (resumable) and the transfer waits for Wi-Fi.

import type { Medium } from '../../transports/transport.js';
import { NearmeshError } from '../errors.js';
import { chunkTransferId } from '../protocol/transfer.js';
import type { TransferChannel } from './transfer-channel.js';

/** How long one transfer message may wait for its link-level acknowledgement. */
const MESSAGE_TIMEOUT_MS = 15_000;

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

  async send(peer: string, payload: Uint8Array): Promise<void> {
    const transferId = chunkTransferId(payload);
    if (
      transferId !== undefined &&
      this.options.mediumOf(peer) !== 'wifi' &&
      !this.options.allowsSlowMedia(transferId)
    ) {
      throw new WaitingForWifiError(peer);
    }
    await this.options.send(peer, payload, MESSAGE_TIMEOUT_MS);
  }
}
