// The agent's bulk transfers (`nearmesh push`): one TransferService over the links, and the policy around
// it. A push that fails for a reason that can pass (the link dropped, the peer restarted or went silent,
// Wi-Fi is not up yet) waits and resumes by itself once the peer is reachable again (on Wi-Fi, unless the
// push allows BLE); transfers a restart interrupted resume too. What lands in the inbox is logged and told
// to subscribers.
import { join } from 'node:path';
import type { Medium } from '../../../transports/transport.js';
import type { Counters } from '../../core/counters.js';
import { TypedEmitter } from '../../core/events.js';
import type { Logger } from '../../core/logger.js';
import type { SystemHandlers } from '../../protocol/system-kind.js';
import { CHUNK_OVERHEAD_BYTES } from '../../protocol/transfer.js';
import type { TransferError } from './errors.js';
import { LinkTransferChannel } from './link-channel.js';
import type { ReceivedFile, ReceiveFailure } from './receiver-api.js';
import type { SendProgress, SendReport } from './sender.js';
import { TransferService } from './service.js';

/** How often waiting transfers look for their peer. */
const RESUME_CHECK_MS = 2_000;
/** The sender's patience with a silent receiver before the attempt fails (and waits to resume). */
const IDLE_TIMEOUT_MS = 10_000;
/**
 * A part (and its sidecar) no sender has touched for this long was abandoned: it is removed, so a sender
 * that gave up does not leave up to max_bytes of hidden file in the inbox for good. A resume after that
 * starts from 0.
 */
export const ABANDONED_PART_AGE_MS = 24 * 60 * 60 * 1000;
/** How often the inbox is swept for abandoned parts (and once at start). */
const SWEEP_EVERY_MS = 60 * 60 * 1000;
/**
 * Chunk data over a direct Wi-Fi link: nearly the TCP link's 1 MiB frame. What each message costs (a cipher,
 * a link-level ack, a write, its buffers' garbage) is paid 16 times less often than with routed 60 KiB chunks:
 * on loopback 200 MB/s from ACCEPT on, against 100 with 60 KiB and 145 with 256 KiB. The receiver's 8 MiB
 * window makes that 8 chunks in flight.
 */
export const WIFI_CHUNK_BYTES = 960 * 1024;

export interface TransferManagerOptions {
  dataDir: string;
  inboxDir: string;
  maxBytes: number;
  /** Bytes one peer may have in the inbox (its files still there, its parts, the offered file). */
  maxBytesPerPeer: number;
  accept: boolean;
  send: (peer: string, payload: Uint8Array, timeoutMs: number) => Promise<unknown>;
  mediumOf: (peer: string) => Medium | undefined;
  isReachable: (peer: string) => boolean;
  /** Largest payload routed through the mesh or over BLE (chunks to a peer not on Wi-Fi are this small). */
  routedPayloadBytes: number;
  counters: Counters;
  log: Logger;
}

/** What a push's subscriber hears, in order: progress and waits, then one `sent` or `failed`. */
export type PushEvent =
  | ({ type: 'progress' } & SendProgress)
  | { type: 'waiting'; transferId: string; peer: string; reason: string }
  | ({ type: 'sent' } & SendReport)
  | { type: 'failed'; transferId: string; peer: string; code: string; message: string };

export interface TransferManagerEvents {
  push: (event: PushEvent) => void;
  received: (file: ReceivedFile) => void;
  'receive-failed': (failure: ReceiveFailure) => void;
}

/** One file on its way, out (a push) or in; `waiting` is a push waiting for its peer to resume. */
export interface TransferInfo {
  transfer_id: string;
  direction: 'out' | 'in';
  peer: string;
  name: string;
  size: number;
  /** Bytes the receiver has written (acknowledged, for a push). */
  bytes_done: number;
  state: 'offering' | 'sending' | 'finishing' | 'waiting' | 'receiving';
}

export interface PushStarted {
  transferId: string;
  peer: string;
  name: string;
  size: number;
}

export class TransferManager extends TypedEmitter<TransferManagerEvents> {
  readonly service: TransferService;
  readonly #options: TransferManagerOptions;
  /** Transfers whose chunks may take BLE (or the mesh) when Wi-Fi is not there. */
  readonly #slowMediaAllowed = new Set<string>();
  /** Transfers waiting to resume, by id: the peer they go to. */
  readonly #waiting = new Map<string, string>();
  readonly #resuming = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;

  constructor(options: TransferManagerOptions) {
    super();
    this.#options = options;
    const channel = new LinkTransferChannel({
      send: options.send,
      mediumOf: options.mediumOf,
      allowsSlowMedia: (transferId) => this.#slowMediaAllowed.has(transferId),
      maxPayloadBytes: WIFI_CHUNK_BYTES + CHUNK_OVERHEAD_BYTES,
      routedPayloadBytes: options.routedPayloadBytes,
    });
    this.service = new TransferService(channel, {
      sender: { stateDir: join(options.dataDir, 'transfers'), idleTimeoutMs: IDLE_TIMEOUT_MS },
      receiver: {
        inboxDir: options.inboxDir,
        maxBytes: options.maxBytes,
        maxBytesPerPeer: options.maxBytesPerPeer,
        sendersFile: join(options.dataDir, 'inbox-senders.json'),
        accept: () => options.accept,
      },
    });
    this.#watchSender();
    this.#watchReceiver();
  }

  /** Resumes what a restart interrupted, and starts looking for the peers of waiting transfers. */
  async start(): Promise<void> {
    for (const state of await this.service.sender.pending()) {
      this.#wait(state.transferId, state.peer);
      this.#options.log.info(
        { transfer: state.transferId, peer: state.peer, name: state.name },
        'transfer: will resume after the restart',
      );
    }
    this.#resumeWaiting();
    this.#sweepTimer = setInterval(() => void this.#sweep(), SWEEP_EVERY_MS);
    this.#sweepTimer.unref();
    await this.#sweep();
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    clearInterval(this.#sweepTimer);
    await this.service.close();
  }

  /** Starts sending a file (hashing it first); its events come as 'push' events with its transfer id. */
  async push(
    peer: string,
    path: string,
    options: { name?: string; allowSlowMedia?: boolean } = {},
  ): Promise<PushStarted> {
    const started = await this.service.sender.start(
      peer,
      path,
      options.name === undefined ? {} : { name: options.name },
    );
    // In time: the first CHUNK waits for the peer's ACCEPT, a round trip after the OFFER start() sent.
    if (options.allowSlowMedia === true) this.#slowMediaAllowed.add(started.transferId);
    this.#options.counters.increment('transfers.started');
    return { transferId: started.transferId, peer, name: started.name, size: started.size };
  }

  /** Files on their way, out and in. */
  transfers(): TransferInfo[] {
    const out = this.service.sender.inProgress().map(
      (transfer): TransferInfo => ({
        transfer_id: transfer.transferId,
        direction: 'out',
        peer: transfer.peer,
        name: transfer.name,
        size: transfer.size,
        bytes_done: transfer.bytesAcked,
        state: transfer.phase === 'idle' ? 'waiting' : transfer.phase,
      }),
    );
    const incoming = this.service.receiver.inProgress().map(
      (transfer): TransferInfo => ({
        transfer_id: transfer.transferId,
        direction: 'in',
        peer: transfer.from,
        name: transfer.name,
        size: transfer.size,
        bytes_done: transfer.bytesReceived,
        state: 'receiving',
      }),
    );
    return [...out, ...incoming];
  }

  /** Takes bulk transfer's messages from the agent's system inbox. */
  registerWith(inbox: SystemHandlers): void {
    inbox.register('transfer', (message) => this.handle(message.from, message.payload));
  }

  /** A transfer payload from a peer. */
  handle(from: string, payload: Uint8Array): void {
    void this.service.handle(from, payload);
  }

  /** The peer may be reachable again (a link came up or moved): resume its waiting transfers now. */
  reachable(peer: string): void {
    if ([...this.#waiting.values()].includes(peer)) this.#resumeWaiting();
  }

  /** No link or route reaches the peer any more: its transfers wait to resume now, not at their timeout. */
  unreachable(peer: string): void {
    this.service.sender.interrupt(peer);
  }

  async #sweep(): Promise<void> {
    const removed = await this.service.receiver.sweep(ABANDONED_PART_AGE_MS);
    if (removed === 0) return;
    this.#options.counters.increment('transfers.parts_swept', removed);
    this.#options.log.info({ removed }, 'transfer: removed parts and sidecars untouched for 24 h');
  }

  #watchSender(): void {
    const sender = this.service.sender;
    sender.on('progress', (progress) => this.emit('push', { type: 'progress', ...progress }));
    sender.on('sent', (report) => {
      this.#slowMediaAllowed.delete(report.transferId);
      this.#options.counters.increment('transfers.sent');
      this.#options.log.info(
        { transfer: report.transferId, peer: report.peer, name: report.name, size: report.size },
        'transfer: sent and verified by the peer',
      );
      this.emit('push', { type: 'sent', ...report });
    });
    sender.on('failed', ({ transferId, peer, error }) => this.#failed(transferId, peer, error));
  }

  #failed(transferId: string, peer: string, error: TransferError): void {
    if (error.resumable) {
      this.#wait(transferId, peer);
      this.#options.counters.increment('transfers.interrupted');
      this.emit('push', { type: 'waiting', transferId, peer, reason: this.#whyWaiting(error) });
      return;
    }
    this.#slowMediaAllowed.delete(transferId);
    this.#options.counters.increment('transfers.failed');
    this.#options.log.warn({ transfer: transferId, peer, err: error }, `transfer failed: ${error.message}`);
    this.emit('push', { type: 'failed', transferId, peer, code: error.code, message: error.message });
  }

  #whyWaiting(error: TransferError): string {
    const cause = error.cause instanceof Error ? error.cause.message : error.message;
    return `${cause}; resumes when the peer is reachable`;
  }

  /** A transfer waits to resume: checked every RESUME_CHECK_MS while any waits (no timer while none does). */
  #wait(transferId: string, peer: string): void {
    this.#waiting.set(transferId, peer);
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.#resumeWaiting(), RESUME_CHECK_MS);
    this.#timer.unref();
  }

  #resumeWaiting(): void {
    if (this.#waiting.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      return;
    }
    for (const [transferId, peer] of this.#waiting) {
      if (this.#resuming.has(transferId) || !this.#options.isReachable(peer)) continue;
      if (!this.#slowMediaAllowed.has(transferId) && this.#options.mediumOf(peer) !== 'wifi') continue;
      this.#waiting.delete(transferId);
      this.#resuming.add(transferId);
      this.service.sender
        .resume(transferId)
        .then(() => this.#options.counters.increment('transfers.resumed'))
        .catch((error: unknown) => {
          const message = error instanceof Error ? error.message : String(error);
          this.#options.log.warn({ transfer: transferId, peer }, `transfer cannot resume: ${message}`);
          this.emit('push', { type: 'failed', transferId, peer, code: 'transfer-source', message });
        })
        .finally(() => this.#resuming.delete(transferId));
    }
  }

  #watchReceiver(): void {
    const receiver = this.service.receiver;
    receiver.on('received', (file) => {
      this.#options.counters.increment('transfers.received');
      this.#options.log.info(
        { transfer: file.transferId, peer: file.from, path: file.path, size: file.size },
        'transfer: file received and verified',
      );
      this.emit('received', file);
    });
    receiver.on('rejected', (offer) => {
      this.#options.counters.increment('transfers.refused');
      this.#options.counters.increment(`transfers.rejected_${offer.cause.replaceAll('-', '_')}`);
      this.#options.log.warn(
        {
          transfer: offer.transferId,
          peer: offer.from,
          name: offer.name,
          size: offer.size,
          code: offer.code,
          cause: offer.cause,
        },
        `transfer refused: ${offer.message}`,
      );
    });
    receiver.on('failed', (failure) => {
      this.#options.counters.increment('transfers.receive_failed');
      this.emit('receive-failed', failure);
    });
  }
}
