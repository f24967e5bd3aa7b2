// The receiving half of bulk transfer, as a state machine over the messages of each transfer. An OFFER is
// checked before anything touches the disk (name, size limit, the peer's share of the inbox, free space
// with a margin, the application's say); bytes are written to the transfer's part in order, hashed as they
// arrive, and every so often synced and counted in its sidecar (in the background, while the next chunks
// are written), so a link drop or an agent restart resumes from what is held. DONE brings the SHA-256 the
// sender computed as it read the file: only when it is that of the bytes written does the file get its
// name (and who pushed it is recorded, for that peer's share). A full disk or a bad hash removes the part
// and the sidecar: no half file is ever left under a real name. The files themselves are inbox-files.ts's
// job.
//
// Whatever a peer sends is checked here: unknown ids, chunks beyond the size or out of order, a flood of
// messages, a transfer id of someone else's are counted drops (`counters`), never a crash or a file outside
// inboxDir.
import { setBounded } from '../../core/bounded-map.js';
import { Counters } from '../../core/counters.js';
import { TypedEmitter } from '../../core/events.js';
import { inboxFileName } from '../../protocol/file-name.js';
import {
  type ChunkMessage,
  type DoneMessage,
  encodeTransfer,
  MAX_CHUNK_BYTES,
  MAX_WINDOW,
  type OfferMessage,
  type RejectCode,
  type ResultCode,
  type TransferMessage,
  transferIdToHex,
} from '../../protocol/transfer.js';
import type { TransferChannel } from './channel.js';
import { Inbox, type Sidecar } from './inbox-files.js';
import { type InboxQuota, type PartShare, type QuotaRefusal, quotaRefusal } from './inbox-quota.js';
import { InboxSenders } from './inbox-senders.js';
import {
  chunkDrop,
  describeIncoming,
  type IncomingTransfer,
  offersSameFile,
  openIncoming,
  persistPart,
  sidecarOf,
} from './incoming-transfer.js';
import { MessageLanes } from './message-lanes.js';
import type {
  IncomingOffer,
  RejectCause,
  TransferReceiverEvents,
  TransferReceiverOptions,
} from './receiver-api.js';

const GiB = 1024 * 1024 * 1024;
const MiB = 1024 * 1024;
/** A part is synced and counted in its sidecar every this many bytes (see persistEveryBytes). */
const PERSIST_EVERY_BYTES = 8 * MiB;
/** Ids of finished transfers remembered, so a DONE repeated after a lost RESULT is answered, not refused. */
const COMPLETED_MEMORY = 256;

export class TransferReceiver extends TypedEmitter<TransferReceiverEvents> {
  /** Drops and refusals by reason (unknown-transfer, wrong-peer, bad-offset, out-of-order, flood, ...). */
  readonly counters = new Counters();
  readonly #channel: TransferChannel;
  readonly #inbox: Inbox;
  readonly #maxBytes: number;
  readonly #quota: InboxQuota;
  readonly #senders: InboxSenders;
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
  readonly #completed = new Map<string, { from: string; name: string; size: number; sha256: Buffer }>();
  /**
   * Offers past the first checks whose files are being set up: they count against maxActive, and against
   * their peer's share of the inbox as soon as they pass it (so concurrent offers cannot all slip past).
   */
  readonly #admitting = new Map<string, PartShare | undefined>();
  #closed = false;

  constructor(channel: TransferChannel, options: TransferReceiverOptions) {
    super();
    this.#channel = channel;
    this.#inbox = new Inbox({ dir: options.inboxDir, fileMode: options.fileMode ?? 0o644, fs: options.fs });
    this.#maxBytes = options.maxBytes ?? GiB;
    this.#quota = {
      maxBytesPerPeer: options.maxBytesPerPeer ?? this.#maxBytes,
      maxFilesPerPeer: options.maxFilesPerPeer ?? 1024,
      maxInboxFiles: options.maxInboxFiles ?? 4096,
    };
    this.#senders = new InboxSenders(options.inboxDir, options.sendersFile);
    this.#margin = options.diskMarginBytes ?? 16 * MiB;
    this.#window = Math.max(1, Math.min(MAX_WINDOW, options.window ?? 16));
    this.#windowBytes = options.windowBytes ?? 8 * MiB;
    this.#maxChunk = Math.max(1, Math.min(MAX_CHUNK_BYTES, options.maxChunkBytes ?? channel.maxPayloadBytes));
    this.#maxActive = options.maxActive ?? 8;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 120_000;
    // A restart re-sends at most twice this (one sync may still be under way when the next is due).
    this.#persistEvery = options.persistEveryBytes ?? PERSIST_EVERY_BYTES;
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

  /** Every transfer being received: how much of it is written. */
  inProgress(): { transferId: string; from: string; name: string; size: number; bytesReceived: number }[] {
    return [...this.#transfers.values()]
      .filter((transfer) => transfer.state === 'receiving')
      .map((transfer) => ({
        transferId: transfer.hex,
        from: transfer.from,
        name: transfer.name,
        size: transfer.size,
        bytesReceived: transfer.written,
      }));
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
        return this.#onDone(from, hex, message);
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
    };
    const reject = (code: RejectCode, message: string, cause: RejectCause = code): void => {
      this.counters.increment(`rejected-${cause}`);
      this.#sendQuietly(from, { kind: 'reject', transferId: offer.transferId, code, message });
      this.emit('rejected', { ...described, code, cause, message });
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
    if (done !== undefined && done.from === from && offersSameFile(done, offer)) {
      // Finished already (our RESULT was lost): let the sender go straight to DONE.
      this.#sendQuietly(from, {
        kind: 'accept',
        transferId: offer.transferId,
        resumeFrom: offer.size,
        window: 1,
      });
      return;
    }
    const fileName = inboxFileName(offer.name);
    if ('problem' in fileName) return reject('bad-name', `file name ${fileName.problem}`);
    if (offer.size > this.#maxBytes) {
      return reject('too-large', `${offer.size} bytes exceeds the limit of ${this.#maxBytes} bytes`);
    }
    if (offer.chunkSize > this.#maxChunk) {
      return reject('refused', `chunk size ${offer.chunkSize} exceeds ${this.#maxChunk}`);
    }
    if (this.#transfers.size + this.#admitting.size >= this.#maxActive) {
      return reject('refused', `busy: ${this.#maxActive} transfers already in progress`);
    }
    // The slot is taken while the disk is checked, so concurrent offers cannot all slip past the limit.
    this.#admitting.set(hex, undefined);
    try {
      await this.#admit(from, offer, hex, fileName.name, described, reject);
    } finally {
      this.#admitting.delete(hex);
    }
  }

  /**
   * The disk side of accepting an offer: the peer's share of the inbox, free space, the application's say,
   * the part and its sidecar. The offer holds its slot in #admitting meanwhile (the caller frees it).
   */
  async #admit(
    from: string,
    offer: OfferMessage,
    hex: string,
    fileName: string,
    described: IncomingOffer,
    reject: (code: RejectCode, message: string, cause?: RejectCause) => void,
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
      if (offersSameFile(sidecar, offer)) {
        held = sidecar.offset;
      } else {
        await this.#inbox.remove(hex);
      }
    }
    const overQuota = await this.#reserveShare(from, hex, offer.size);
    if (overQuota !== undefined) return reject('disk-full', overQuota.message, overQuota.cause);
    // Bytes the other transfers under way will still write are spoken for, and so are those of the offers
    // being admitted on other lanes right now (they waited on the same free space).
    let reserved = 0;
    for (const other of this.#transfers.values()) reserved += other.size - other.written;
    for (const [other, admitted] of this.#admitting)
      if (other !== hex && admitted !== undefined) reserved += admitted.size;
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
      transfer = await openIncoming(this.#inbox, from, offer, fileName, hex, held);
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
    const writing = transfer.part.write(bytes, transfer.written);
    // Hashed while the thread pool writes them: the two overlap.
    transfer.hash.update(bytes);
    try {
      await writing;
    } catch (error) {
      return this.#abortOnFileError(transfer, error);
    }
    transfer.written += bytes.length;
    if (transfer.written - transfer.persisted >= this.#persistEvery) {
      const failed = await transfer.persisting;
      if (failed !== undefined) return this.#abortOnFileError(transfer, failed);
      persistPart(this.#inbox, transfer);
    }
    const ackEvery = Math.max(1, Math.floor(transfer.window / 2)) * transfer.chunkSize;
    if (transfer.written - transfer.lastAck >= ackEvery || transfer.written === transfer.size) {
      transfer.lastAck = transfer.written;
      this.#sendQuietly(from, { kind: 'chunk-ack', transferId: transfer.id, upTo: transfer.written });
    }
    // An event per chunk is a cost only worth paying for someone listening.
    if (this.listenerCount('progress') === 0) return;
    this.emit('progress', {
      transferId: hex,
      from,
      name: transfer.name,
      bytesReceived: transfer.written,
      total: transfer.size,
    });
  }

  async #onDone(from: string, hex: string, message: DoneMessage): Promise<void> {
    const sent = Buffer.from(message.sha256);
    const transfer = this.#transfers.get(hex);
    if (transfer === undefined) {
      const done = this.#completed.get(hex);
      if (done === undefined || done.from !== from) {
        this.counters.increment('unknown-transfer');
        return;
      }
      // Our RESULT was lost: the same answer again, for the same file only.
      this.#sendQuietly(from, {
        kind: 'transfer-result',
        transferId: message.transferId,
        outcome: done.sha256.equals(sent)
          ? { ok: true }
          : { ok: false, code: 'hash-mismatch', message: hashMismatch(done.sha256, sent) },
      });
      return;
    }
    if (transfer.from !== from) {
      this.counters.increment('wrong-peer');
      return;
    }
    if (transfer.written !== transfer.size) {
      return this.#abort(transfer, 'incomplete', `DONE after ${transfer.written} of ${transfer.size} bytes`);
    }
    const failed = await transfer.persisting;
    if (failed !== undefined) return this.#abortOnFileError(transfer, failed);
    const digest = transfer.hash.digest();
    if (!digest.equals(sent)) return this.#abort(transfer, 'hash-mismatch', hashMismatch(digest, sent));
    let path: string;
    try {
      await transfer.part.seal();
      transfer.state = 'closed';
      path = await this.#inbox.place(hex, transfer.fileName);
    } catch (error) {
      return this.#abortOnFileError(transfer, error);
    }
    // Recorded while the part still counts (its sidecar, the transfer in memory), and before the RESULT:
    // no OFFER of the sender's, however quick, finds the file counted nowhere.
    await this.#senders
      .add(path, from, transfer.size)
      .catch(() => this.counters.increment('senders-unsaved'));
    this.#forget(transfer);
    await this.#inbox.removeSidecar(hex);
    setBounded(
      this.#completed,
      hex,
      { from, name: transfer.name, size: transfer.size, sha256: digest },
      COMPLETED_MEMORY,
    );
    this.counters.increment('received');
    this.#sendQuietly(from, { kind: 'transfer-result', transferId: transfer.id, outcome: { ok: true } });
    this.emit('received', {
      transferId: hex,
      from,
      path,
      name: transfer.name,
      size: transfer.size,
      sha256: digest.toString('hex'),
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
    // A sidecar written in the background after the removal would outlive the transfer.
    await transfer.persisting;
    if (transfer.state !== 'closed') await transfer.part.close().catch(() => {});
    transfer.state = 'closed';
    await this.#inbox.remove(transfer.hex);
  }

  /** Frees the memory of a silent transfer; the part and the persisted sidecar stay for a resume. */
  async #park(transfer: IncomingTransfer): Promise<void> {
    this.#forget(transfer);
    if (transfer.state === 'closed') return;
    transfer.state = 'closed';
    await transfer.persisting;
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

  /**
   * Reserves `size` bytes of `from`'s share of the inbox for the offer `hex` (in #admitting), or says why
   * they do not fit it (or the inbox's file bound). The parts are the inbox's sidecars and, in memory, the
   * transfers being received or admitted: read, checked and reserved after the last await, in one go, so
   * concurrent offers never miss each other's reservations.
   */
  async #reserveShare(from: string, hex: string, size: number): Promise<QuotaRefusal | undefined> {
    const parts = new Map<string, PartShare>();
    for (const sidecar of await this.#inbox.sidecars()) parts.set(sidecar.transferId, sidecar);
    const files = await this.#senders.shareOf(from);
    let inboxFiles = await this.#senders.size();
    // Entries of files people took away are dropped only when the bound is near: that stats every file.
    if (inboxFiles + parts.size + this.#admitting.size >= this.#quota.maxInboxFiles) {
      inboxFiles = await this.#senders.prune();
    }
    for (const transfer of this.#transfers.values()) parts.set(transfer.hex, transfer);
    for (const [other, admitted] of this.#admitting) if (admitted !== undefined) parts.set(other, admitted);
    parts.delete(hex);
    const refusal = quotaRefusal(this.#quota, from, size, files, inboxFiles, parts.values());
    if (refusal === undefined) this.#admitting.set(hex, { from, size });
    return refusal;
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

function hashMismatch(written: Buffer, sent: Buffer): string {
  return `SHA-256 ${written.toString('hex')} is not the sender's ${sent.toString('hex')}`;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
