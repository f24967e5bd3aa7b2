// The receiving half of bulk transfer, as a state machine over the messages of each transfer. An OFFER is
// checked before anything touches the disk (name, size limit, free space with a margin, the application's
// say); bytes are written to the transfer's part in order, hashed as they arrive, and every so often synced
// and counted in its sidecar, so a link drop or an agent restart resumes from what is held. DONE checks the
// SHA-256 and only then gives the file its name. A full disk or a bad hash removes the part and the
// sidecar: no half file is ever left under a real name. The files themselves are inbox-files.ts's job.
//
// Whatever a peer sends is checked here: unknown ids, chunks beyond the size or out of order, a flood of
// messages, a transfer id of someone else's are counted drops (`counters`), never a crash or a file outside
// inboxDir.
import { setBounded } from '../../core/bounded-map.js';
import { Counters } from '../../core/counters.js';
import { TypedEmitter } from '../../core/events.js';
import {
  type ChunkMessage,
  encodeTransfer,
  fileNameProblem,
  MAX_CHUNK_BYTES,
  MAX_WINDOW,
  type OfferMessage,
  type RejectCode,
  type ResultCode,
  type TransferMessage,
  transferIdToHex,
} from '../../protocol/transfer.js';
import type { TransferChannel } from './channel.js';
import { Inbox, type Sidecar, type TransferReceiverFs } from './inbox-files.js';
import {
  chunkDrop,
  describeIncoming,
  type IncomingTransfer,
  offersSameFile,
  openIncoming,
  sidecarOf,
} from './incoming-transfer.js';
import { MessageLanes } from './message-lanes.js';

export interface IncomingOffer {
  transferId: string;
  from: string;
  name: string;
  size: number;
  sha256: string;
}

export interface TransferReceiverOptions {
  /** Where finished files appear (created if missing). */
  inboxDir: string;
  /** Largest file accepted (default 1 GiB). */
  maxBytes?: number;
  /** Free space that must remain after the whole file is written (default 16 MiB). */
  diskMarginBytes?: number;
  /** Chunks a sender may have unacknowledged (default 16), fewer when they would exceed windowBytes. */
  window?: number;
  /** Bytes a sender may have unacknowledged (default 8 MiB): a window of large chunks has fewer of them. */
  windowBytes?: number;
  /** Largest chunk accepted (default: the channel's maxPayloadBytes, at most MAX_CHUNK_BYTES); bounds memory. */
  maxChunkBytes?: number;
  /** Transfers received at the same time (default 8); more are refused. */
  maxActive?: number;
  /** A transfer silent this long is parked: its part stays for a resume, its memory is freed (default 2 min). */
  idleTimeoutMs?: number;
  /** Sidecar offset is persisted (after an fdatasync) at least every this many bytes (default 1 MiB). */
  persistEveryBytes?: number;
  /**
   * Messages queued for one transfer before more are dropped as a flood (default 4 × window); chunk bytes
   * queued are bounded too, by 2 × windowBytes.
   */
  maxQueuedPerTransfer?: number;
  /** Mode of finished files (default 0o644). */
  fileMode?: number;
  /** The application's say on an offer; false refuses it ('refused'). */
  accept?: (offer: IncomingOffer) => boolean | Promise<boolean>;
  fs?: Partial<TransferReceiverFs>;
}

export interface ReceiveProgress {
  transferId: string;
  from: string;
  name: string;
  bytesReceived: number;
  total: number;
}

export interface ReceivedFile {
  transferId: string;
  from: string;
  /** Where the verified file now is (inside inboxDir). */
  path: string;
  /** The name the sender offered (the file may carry a " (n)" suffix). */
  name: string;
  size: number;
  sha256: string;
}

export interface ReceiveFailure {
  transferId: string;
  from: string;
  name: string;
  code: ResultCode | 'cancelled';
  message: string;
}

export interface TransferReceiverEvents {
  offer: (offer: IncomingOffer & { resumeFrom: number }) => void;
  rejected: (event: IncomingOffer & { code: RejectCode; message: string }) => void;
  progress: (progress: ReceiveProgress) => void;
  received: (file: ReceivedFile) => void;
  failed: (failure: ReceiveFailure) => void;
}

const GiB = 1024 * 1024 * 1024;
const MiB = 1024 * 1024;
/** Ids of finished transfers remembered, so a DONE repeated after a lost RESULT is answered, not refused. */
const COMPLETED_MEMORY = 256;

export class TransferReceiver extends TypedEmitter<TransferReceiverEvents> {
  /** Drops and refusals by reason (unknown-transfer, wrong-peer, bad-offset, out-of-order, flood, ...). */
  readonly counters = new Counters();
  readonly #channel: TransferChannel;
  readonly #inbox: Inbox;
  readonly #maxBytes: number;
  readonly #margin: number;
  readonly #window: number;
  readonly #windowBytes: number;
  readonly #maxChunk: number;
  readonly #maxActive: number;
  readonly #idleTimeoutMs: number;
  readonly #persistEvery: number;
  readonly #accept: TransferReceiverOptions['accept'];
  readonly #transfers = new Map<string, IncomingTransfer>();
  readonly #lanes: MessageLanes;
  readonly #completed = new Map<string, { from: string; size: number }>();
  /** Offers past the checks whose files are being set up (they count against maxActive). */
  #opening = 0;
  #closed = false;

  constructor(channel: TransferChannel, options: TransferReceiverOptions) {
    super();
    this.#channel = channel;
    this.#inbox = new Inbox({ dir: options.inboxDir, fileMode: options.fileMode ?? 0o644, fs: options.fs });
    this.#maxBytes = options.maxBytes ?? GiB;
    this.#margin = options.diskMarginBytes ?? 16 * MiB;
    this.#window = Math.max(1, Math.min(MAX_WINDOW, options.window ?? 16));
    this.#windowBytes = options.windowBytes ?? 8 * MiB;
    this.#maxChunk = Math.max(1, Math.min(MAX_CHUNK_BYTES, options.maxChunkBytes ?? channel.maxPayloadBytes));
    this.#maxActive = options.maxActive ?? 8;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 120_000;
    // An fdatasync and a sidecar rename per MiB cost a fifth of a loopback push; a restart re-sends at most this.
    this.#persistEvery = options.persistEveryBytes ?? 8 * MiB;
    this.#lanes = new MessageLanes({
      maxQueued: options.maxQueuedPerTransfer ?? 4 * this.#window,
      maxQueuedBytes: 2 * this.#windowBytes + MAX_CHUNK_BYTES,
      counters: this.counters,
    });
    this.#accept = options.accept;
  }

  /** Transfers being received now. */
  get active(): number {
    return this.#transfers.size;
  }

  /**
   * Handles a message from a sender (OFFER, CHUNK, DONE, CANCEL). Messages of one transfer are processed
   * one after another; the promise settles when this one is. Never throws.
   */
  handle(from: string, message: TransferMessage): Promise<void> {
    const hex = transferIdToHex(message.transferId);
    if (this.#closed) {
      this.counters.increment('closed');
      return Promise.resolve();
    }
    if (message.kind === 'chunk' && !this.#transfers.has(hex) && !this.#lanes.has(hex)) {
      this.counters.increment('unknown-transfer');
      return Promise.resolve();
    }
    const bytes = message.kind === 'chunk' ? message.bytes.length : 0;
    return this.#lanes.run(hex, () => this.#process(from, message, hex), bytes);
  }

  /** Cancels a transfer being received: tells the sender, removes the part. */
  cancel(transferId: string, reason = 'cancelled by the receiver'): Promise<void> {
    return this.#lanes.run(
      transferId,
      async () => {
        const transfer = this.#transfers.get(transferId);
        if (transfer === undefined) return;
        await this.#discard(transfer);
        this.#sendQuietly(transfer.from, { kind: 'cancel', transferId: transfer.id, reason });
        this.emit('failed', { ...describeIncoming(transfer), code: 'cancelled', message: reason });
      },
      undefined,
    );
  }

  /** Removes parts and sidecars no transfer has touched for `maxAgeMs` (abandoned by their senders). */
  sweep(maxAgeMs: number, now = Date.now()): Promise<number> {
    // Not one being received, nor one whose OFFER is being handled (a resume of an old part).
    return this.#inbox.sweep(maxAgeMs, now, (hex) => this.#transfers.has(hex) || this.#lanes.has(hex));
  }

  /** Parks every transfer (sidecar persisted, part kept for a resume) and stops taking messages. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#lanes.drain();
    for (const transfer of [...this.#transfers.values()]) await this.#park(transfer);
  }

  async #process(from: string, message: TransferMessage, hex: string): Promise<void> {
    switch (message.kind) {
      case 'offer':
        return this.#onOffer(from, message, hex);
      case 'chunk':
        return this.#onChunk(from, message, hex);
      case 'done':
        return this.#onDone(from, hex, message.transferId);
      case 'cancel':
        return this.#onCancel(from, hex);
      default:
        this.counters.increment('unexpected');
    }
  }

  async #onOffer(from: string, offer: OfferMessage, hex: string): Promise<void> {
    const described: IncomingOffer = {
      transferId: hex,
      from,
      name: offer.name,
      size: offer.size,
      sha256: Buffer.from(offer.sha256).toString('hex'),
    };
    const reject = (code: RejectCode, message: string): void => {
      this.counters.increment(`rejected-${code}`);
      this.#sendQuietly(from, { kind: 'reject', transferId: offer.transferId, code, message });
      this.emit('rejected', { ...described, code, message });
    };
    const existing = this.#transfers.get(hex);
    if (existing !== undefined) {
      if (existing.from !== from) {
        this.counters.increment('wrong-peer');
        return;
      }
      if (!offersSameFile(existing, offer)) {
        reject('refused', 'transfer id reused for a different file');
        return;
      }
      if (offer.chunkSize > this.#maxChunk) {
        reject('refused', `chunk size ${offer.chunkSize} exceeds ${this.#maxChunk}`);
        return;
      }
      existing.chunkSize = offer.chunkSize;
      existing.lastAck = existing.written;
      this.#armTimer(existing);
      this.#sendAccept(existing, described);
      return;
    }
    const done = this.#completed.get(hex);
    if (done !== undefined && done.from === from && done.size === offer.size) {
      // Finished already (our RESULT was lost): let the sender go straight to DONE.
      this.#sendQuietly(from, {
        kind: 'accept',
        transferId: offer.transferId,
        resumeFrom: offer.size,
        window: 1,
      });
      return;
    }
    const nameProblem = fileNameProblem(offer.name);
    if (nameProblem !== null) return reject('bad-name', `file name ${nameProblem}`);
    if (offer.name.startsWith('.'))
      return reject('bad-name', 'file name starts with "." (hidden names are not received)');
    if (offer.size > this.#maxBytes) {
      return reject('too-large', `${offer.size} bytes exceeds the limit of ${this.#maxBytes} bytes`);
    }
    if (offer.chunkSize > this.#maxChunk) {
      return reject('refused', `chunk size ${offer.chunkSize} exceeds ${this.#maxChunk}`);
    }
    if (this.#transfers.size + this.#opening >= this.#maxActive) {
      return reject('refused', `busy: ${this.#maxActive} transfers already in progress`);
    }
    // The slot is taken while the disk is checked, so concurrent offers cannot all slip past the limit.
    this.#opening += 1;
    try {
      await this.#admit(from, offer, hex, described, reject);
    } finally {
      this.#opening -= 1;
    }
  }

  /** The disk side of accepting an offer: free space, the application's say, the part and its sidecar. */
  async #admit(
    from: string,
    offer: OfferMessage,
    hex: string,
    described: IncomingOffer,
    reject: (code: RejectCode, message: string) => void,
  ): Promise<void> {
    try {
      await this.#inbox.create();
    } catch (error) {
      return reject(
        isDiskFull(error) ? 'disk-full' : 'refused',
        `cannot create the inbox: ${errorText(error)}`,
      );
    }
    const sidecar = await this.#readSidecar(hex);
    let held = 0;
    if (sidecar !== undefined) {
      if (sidecar.from !== from) {
        this.counters.increment('wrong-peer');
        return;
      }
      if (sidecar.size === offer.size && sidecar.sha256 === described.sha256 && sidecar.name === offer.name) {
        held = sidecar.offset;
      } else {
        await this.#inbox.remove(hex);
      }
    }
    // Bytes the other transfers under way will still write are spoken for.
    let reserved = 0;
    for (const other of this.#transfers.values()) reserved += other.size - other.written;
    const needed = offer.size - held + this.#margin + reserved;
    try {
      const free = await this.#inbox.freeBytes();
      if (free < needed) {
        if (held === 0) await this.#inbox.remove(hex);
        return reject(
          'disk-full',
          `${offer.size - held} bytes (plus a ${this.#margin} byte margin and ${reserved} bytes still due ` +
            `to other transfers) do not fit in the ${free} bytes free`,
        );
      }
    } catch (error) {
      return reject('refused', `cannot check free space: ${errorText(error)}`);
    }
    if (this.#accept !== undefined) {
      let accepted = false;
      try {
        accepted = await this.#accept(described);
      } catch {
        accepted = false;
      }
      if (!accepted) return reject('refused', 'refused by the application');
    }
    if (this.#closed || this.#transfers.has(hex)) return;
    let transfer: IncomingTransfer;
    try {
      transfer = await openIncoming(this.#inbox, from, offer, hex, held);
    } catch (error) {
      await this.#inbox.remove(hex);
      return reject(
        isDiskFull(error) ? 'disk-full' : 'refused',
        `cannot create the file: ${errorText(error)}`,
      );
    }
    this.#transfers.set(hex, transfer);
    this.#armTimer(transfer);
    this.#sendAccept(transfer, described);
  }

  async #onChunk(from: string, chunk: ChunkMessage, hex: string): Promise<void> {
    const transfer = this.#transfers.get(hex);
    if (transfer === undefined) {
      this.counters.increment('unknown-transfer');
      return;
    }
    if (transfer.from !== from) {
      this.counters.increment('wrong-peer');
      return;
    }
    const drop = chunkDrop(transfer, chunk);
    if (drop !== undefined) {
      this.counters.increment(drop);
      return;
    }
    this.#armTimer(transfer);
    const bytes = chunk.bytes.subarray(transfer.written - chunk.offset);
    try {
      await transfer.part.write(bytes, transfer.written);
    } catch (error) {
      return this.#abortOnFileError(transfer, error);
    }
    transfer.hash.update(bytes);
    transfer.written += bytes.length;
    if (transfer.written - transfer.persisted >= this.#persistEvery) {
      try {
        await transfer.part.sync();
        await this.#inbox.writeSidecar(sidecarOf(transfer));
        transfer.persisted = transfer.written;
      } catch (error) {
        return this.#abortOnFileError(transfer, error);
      }
    }
    const ackEvery = Math.max(1, Math.floor(transfer.window / 2)) * transfer.chunkSize;
    if (transfer.written - transfer.lastAck >= ackEvery || transfer.written === transfer.size) {
      transfer.lastAck = transfer.written;
      this.#sendQuietly(from, { kind: 'chunk-ack', transferId: transfer.id, upTo: transfer.written });
    }
    this.emit('progress', {
      transferId: hex,
      from,
      name: transfer.name,
      bytesReceived: transfer.written,
      total: transfer.size,
    });
  }

  async #onDone(from: string, hex: string, id: Uint8Array): Promise<void> {
    const transfer = this.#transfers.get(hex);
    if (transfer === undefined) {
      const done = this.#completed.get(hex);
      if (done !== undefined && done.from === from) {
        this.#sendQuietly(from, { kind: 'transfer-result', transferId: id, outcome: { ok: true } });
      } else {
        this.counters.increment('unknown-transfer');
      }
      return;
    }
    if (transfer.from !== from) {
      this.counters.increment('wrong-peer');
      return;
    }
    if (transfer.written !== transfer.size) {
      return this.#abort(transfer, 'incomplete', `DONE after ${transfer.written} of ${transfer.size} bytes`);
    }
    const digest = transfer.hash.digest();
    if (!digest.equals(transfer.sha256)) {
      return this.#abort(
        transfer,
        'hash-mismatch',
        `SHA-256 ${digest.toString('hex')} is not the offered ${Buffer.from(transfer.sha256).toString('hex')}`,
      );
    }
    let path: string;
    try {
      await transfer.part.seal();
      transfer.state = 'closed';
      path = await this.#inbox.place(hex, transfer.name);
    } catch (error) {
      return this.#abortOnFileError(transfer, error);
    }
    this.#forget(transfer);
    await this.#inbox.removeSidecar(hex);
    setBounded(this.#completed, hex, { from, size: transfer.size }, COMPLETED_MEMORY);
    this.counters.increment('received');
    this.#sendQuietly(from, { kind: 'transfer-result', transferId: transfer.id, outcome: { ok: true } });
    this.emit('received', {
      transferId: hex,
      from,
      path,
      name: transfer.name,
      size: transfer.size,
      sha256: Buffer.from(transfer.sha256).toString('hex'),
    });
  }

  async #onCancel(from: string, hex: string): Promise<void> {
    const transfer = this.#transfers.get(hex);
    if (transfer !== undefined) {
      if (transfer.from !== from) {
        this.counters.increment('wrong-peer');
        return;
      }
      await this.#discard(transfer);
      this.emit('failed', {
        ...describeIncoming(transfer),
        code: 'cancelled',
        message: 'cancelled by the sender',
      });
      return;
    }
    const sidecar = await this.#readSidecar(hex);
    if (sidecar !== undefined && sidecar.from === from) await this.#inbox.remove(hex);
    else this.counters.increment('unknown-transfer');
  }

  /** Gives up on a transfer: tells the sender why, removes the part and the sidecar. */
  async #abort(transfer: IncomingTransfer, code: ResultCode, message: string): Promise<void> {
    this.counters.increment(`failed-${code}`);
    // Files first: once the sender hears of the failure, nothing of the transfer is left.
    await this.#discard(transfer);
    this.#sendQuietly(transfer.from, {
      kind: 'transfer-result',
      transferId: transfer.id,
      outcome: { ok: false, code, message },
    });
    this.emit('failed', { ...describeIncoming(transfer), code, message });
  }

  /** Aborts after a file operation failed: disk-full when the disk is, io-error otherwise. */
  #abortOnFileError(transfer: IncomingTransfer, error: unknown): Promise<void> {
    return this.#abort(transfer, isDiskFull(error) ? 'disk-full' : 'io-error', errorText(error));
  }

  async #discard(transfer: IncomingTransfer): Promise<void> {
    this.#forget(transfer);
    if (transfer.state !== 'closed') await transfer.part.close().catch(() => {});
    transfer.state = 'closed';
    await this.#inbox.remove(transfer.hex);
  }

  /** Frees the memory of a silent transfer; the part and the persisted sidecar stay for a resume. */
  async #park(transfer: IncomingTransfer): Promise<void> {
    this.#forget(transfer);
    if (transfer.state === 'closed') return;
    transfer.state = 'closed';
    try {
      await transfer.part.sync();
      await this.#inbox.writeSidecar(sidecarOf(transfer));
    } catch {
      // The older sidecar still says what is safely held.
    }
    await transfer.part.close().catch(() => {});
    this.counters.increment('parked');
  }

  #forget(transfer: IncomingTransfer): void {
    if (transfer.timer !== undefined) clearTimeout(transfer.timer);
    transfer.timer = undefined;
    if (this.#transfers.get(transfer.hex) === transfer) this.#transfers.delete(transfer.hex);
  }

  #armTimer(transfer: IncomingTransfer): void {
    if (transfer.timer !== undefined) clearTimeout(transfer.timer);
    transfer.timer = setTimeout(() => {
      // Through the transfer's lane, so it never races a chunk being written.
      const queued = this.#lanes.tail(transfer.hex);
      const park = async () => {
        if (this.#transfers.get(transfer.hex) === transfer) await this.#park(transfer);
      };
      void (queued === undefined ? park() : queued.then(park)).catch(() => {});
    }, this.#idleTimeoutMs);
    transfer.timer.unref();
  }

  #sendAccept(transfer: IncomingTransfer, described: IncomingOffer): void {
    transfer.window = this.#windowFor(transfer);
    this.emit('offer', { ...described, resumeFrom: transfer.written });
    this.#sendQuietly(transfer.from, {
      kind: 'accept',
      transferId: transfer.id,
      resumeFrom: transfer.written,
      window: transfer.window,
    });
  }

  /**
   * Chunks in flight for this transfer's chunk size: the window, or fewer to stay within windowBytes and
   * what the link to the sender carries in time (channel.windowLimit: one chunk at a time over BLE).
   */
  #windowFor(transfer: IncomingTransfer): number {
    const byBytes = Math.floor(this.#windowBytes / transfer.chunkSize);
    const byLink = this.#channel.windowLimit?.(transfer.from) ?? this.#window;
    return Math.max(1, Math.min(this.#window, byBytes, byLink));
  }

  #sendQuietly(peer: string, message: TransferMessage): void {
    this.#channel.send(peer, encodeTransfer(message)).catch(() => this.counters.increment('send-failed'));
  }

  /** The sidecar of a part an earlier attempt left; a corrupt one (removed with its part) is counted. */
  async #readSidecar(hex: string): Promise<Sidecar | undefined> {
    const sidecar = await this.#inbox.readSidecar(hex);
    if (sidecar === 'corrupt') this.counters.increment('bad-sidecar');
    return typeof sidecar === 'string' ? undefined : sidecar;
  }
}

function isDiskFull(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
