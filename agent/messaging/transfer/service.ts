// Both halves of bulk transfer on one channel: decodes what a peer sent once and hands it to the sender
// (ACCEPT, REJECT, CHUNK-ACK, RESULT, and CANCEL of our own transfers) or the receiver (OFFER, CHUNK, DONE,
// CANCEL of theirs). What does not decode is counted, never thrown.
import { Counters } from '../../core/counters.js';
import { DecodeError } from '../../protocol/errors.js';
import { decodeTransfer, transferIdToHex } from '../../protocol/transfer.js';
import type { TransferChannel } from './channel.js';
import { TransferReceiver } from './receiver.js';
import type { TransferReceiverOptions } from './receiver-api.js';
import { TransferSender, type TransferSenderOptions } from './sender.js';

export interface TransferServiceOptions {
  sender: TransferSenderOptions;
  receiver: TransferReceiverOptions;
}

export class TransferService {
  readonly sender: TransferSender;
  readonly receiver: TransferReceiver;
  /** Payloads that did not decode, by DecodeError reason (decode-<reason>). */
  readonly counters = new Counters();

  constructor(channel: TransferChannel, options: TransferServiceOptions) {
    this.sender = new TransferSender(channel, options.sender);
    this.receiver = new TransferReceiver(channel, options.receiver);
  }

  /** A transfer payload from `from`; settles when it has been handled. Never throws. */
  async handle(from: string, payload: Uint8Array): Promise<void> {
    const message = decodeTransfer(payload);
    if (message instanceof DecodeError) {
      this.counters.increment(`decode-${message.reason}`);
      return;
    }
    switch (message.kind) {
      case 'offer':
      case 'chunk':
      case 'done':
        return this.receiver.handle(from, message);
      case 'cancel':
        return this.sender.has(transferIdToHex(message.transferId))
          ? this.sender.handle(from, message)
          : this.receiver.handle(from, message);
      default:
        return this.sender.handle(from, message);
    }
  }

  async close(): Promise<void> {
    await this.sender.close();
    await this.receiver.close();
  }
}
