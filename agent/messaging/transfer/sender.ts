// The sending half of bulk transfer: OFFER the file, and on ACCEPT send CHUNKs from where the receiver
// stands with at most `window` chunks unacknowledged (CHUNK-ACK is the credit), hashing them as they are
// read (send-hash.ts), then DONE with the SHA-256 once the file is checked to be unchanged, and wait for the
// RESULT. A silent peer or a failed link ends the attempt with a resumable error; `resume` re-OFFERs the same
// transfer id and the receiver's ACCEPT says where to go on. What a restart needs is kept by sender-store.ts,
// the file itself is read through source-file.ts into chunk-buffers.ts's buffers.
import { createHash, randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import { Counters } from '../../core/counters.js';
import { TypedEmitter } from '../../core/events.js';
import { inboxFileName } from '../../protocol/file-name.js';
import {
  CHUNK_OVERHEAD_BYTES,
  encodeTransfer,
  layoutChunk,
  MAX_CHUNK_BYTES,
  type TransferMessage,
  transferIdFromHex,
  transferIdToHex,
} from '../../protocol/transfer.js';
import { ChannelDownError, type TransferChannel } from './channel.js';
import { ChunkBuffers } from './chunk-buffers.js';
import {
  TransferCancelledError,
  TransferClosedError,
  type TransferError,
  TransferFailedError,
  TransferLinkError,
  TransferProtocolError,
  TransferRejectedError,
  TransferSourceError,
  TransferTimeoutError,
} from './errors.js';
import { SendHash } from './send-hash.js';
import { type PersistedSend, SenderStore } from './sender-store.js';
import { isSameVersion, SourceFile, type SourceVersion, sourceVersion } from './source-file.js';

export interface TransferSenderOptions {
  /** Directory for the per-transfer resume state (created if missing). */
  stateDir: string;
  /** How long the peer may stay silent while we wait for it before the attempt fails (resumable). */
  idleTimeoutMs?: number;
  /**
   * Largest chunk data size; each attempt takes what fits the link to the peer then (the channel's
   * payloadLimit), so a resume after a fall back to BLE goes on in smaller chunks. Default MAX_CHUNK_BYTES.
   */
  chunkSize?: number;
  /** Progress events at most this often, besides the last one of an attempt (default 100 ms). */
  progressIntervalMs?: number;
  now?: () => number;
}

export interface SendProgress {
  transferId: string;
  peer: string;
  /** Bytes handed to the channel (from the current attempt's resume point on). */
  bytesSent: number;
  /** Bytes the receiver has written (CHUNK-ACK). */
  bytesAcked: number;
  total: number;
  /** Acknowledged bytes per second over the current attempt. */
  rateBps: number;
}

export interface SendReport {
  transferId: string;
  peer: string;
  name: string;
  size: number;
  /** SHA-256 as hex. */
  sha256: string;
  /** Where the last attempt started (0 unless it resumed). */
  resumedFrom: number;
}

export interface TransferSenderEvents {
  /** The receiver accepted an OFFER (again, after a resume) and wants bytes from `resumeFrom`. */
  accepted: (event: { transferId: string; peer: string; resumeFrom: number; window: number }) => void;
  progress: (progress: SendProgress) => void;
  sent: (report: SendReport) => void;
  failed: (event: { transferId: string; peer: string; error: TransferError }) => void;
}

/** A transfer in progress: `done` settles when this attempt ends (rejects with a TransferError). */
export interface OutgoingTransfer {
  readonly transferId: string;
  /** The name offered and the file's size. */
  readonly name: string;
  readonly size: number;
  readonly done: Promise<SendReport>;
}

type Phase = 'offering' | 'sending' | 'finishing' | 'idle';

interface Outgoing {
  id: Uint8Array;
  hex: string;
  peer: string;
  path: string;
  name: string;
  size: number;
  mtimeMs: number;
  /** The file's SHA-256 as far as it has been read; kept across attempts (not across a restart). */
  hash: SendHash;
  phase: Phase;
  /** Increments with every attempt, so late failures of an older attempt are ignored. */
  attempt: number;
  chunkSize: number;
  window: number;
  nextOffset: number;
  ackedUpTo: number;
  resumedFrom: number;
  attemptStartedAt: number;
  lastProgressAt: number;
  source: SourceFile | undefined;
  /** What this attempt reads its chunks into. */
  buffers: ChunkBuffers | undefined;
  timer: NodeJS.Timeout | undefined;
  pumping: boolean;
  settle: { resolve: (report: SendReport) => void; reject: (error: TransferError) => void } | undefined;
  done: Promise<SendReport> | undefined;
}

const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
/** A progress event per chunk would be thousands a second on a fast link, each a JSON line to the CLI. */
const DEFAULT_PROGRESS_INTERVAL_MS = 100;

export class TransferSender extends TypedEmitter<TransferSenderEvents> {
  /** Dropped messages by reason (unknown-transfer, wrong-peer, unexpected, bad-ack). */
  readonly counters = new Counters();
  readonly #channel: TransferChannel;
  readonly #store: SenderStore;
  readonly #idleTimeoutMs: number;
  readonly #chunkSize: number;
  readonly #progressIntervalMs: number;
  readonly #now: () => number;
  readonly #transfers = new Map<string, Outgoing>();
  #closed = false;

  constructor(channel: TransferChannel, options: TransferSenderOptions) {
    super();
    this.#channel = channel;
    this.#store = new SenderStore(options.stateDir);
    this.#idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    const fits = Math.min(MAX_CHUNK_BYTES, channel.maxPayloadBytes - CHUNK_OVERHEAD_BYTES);
    this.#chunkSize = Math.min(options.chunkSize ?? fits, fits);
    if (!Number.isInteger(this.#chunkSize) || this.#chunkSize < 1) {
      throw new RangeError(
        `chunk size ${this.#chunkSize} does not fit the channel's ${channel.maxPayloadBytes} bytes`,
      );
    }
    this.#progressIntervalMs = options.progressIntervalMs ?? DEFAULT_PROGRESS_INTERVAL_MS;
    this.#now = options.now ?? Date.now;
  }

  /** Starts sending `path` to `peer`. Rejects with TransferSourceError if it cannot be read. */
  async start(peer: string, path: string, options: { name?: string } = {}): Promise<OutgoingTransfer> {
    const id = new Uint8Array(randomBytes(16));
    const hex = transferIdToHex(id);
    const offered = options.name ?? basename(path);
    // The receiver cleans names the same way: offering the cleaned one shows the sender what it will be.
    const fileName = inboxFileName(offered);
    if ('problem' in fileName) {
      throw new TransferSourceError(hex, `file name ${JSON.stringify(offered)} ${fileName.problem}`);
    }
    const { name } = fileName;
    let version: SourceVersion;
    let source: SourceFile;
    try {
      version = await sourceVersion(hex, path);
      // Opened now (and kept for the chunks): a file we may not read fails here, before the peer hears of it.
      source = await SourceFile.open(path, version.size);
    } catch (error) {
      if (error instanceof TransferSourceError) throw error;
      throw new TransferSourceError(hex, `cannot read ${path}`, { cause: error });
    }
    const state: PersistedSend = { version: 1, transferId: hex, peer, path, name, ...version };
    try {
      await this.#store.save(state);
    } catch (error) {
      await source.close().catch(() => {});
      throw error;
    }
    const transfer = this.#track(state, id);
    transfer.source = source;
    try {
      return this.#begin(transfer);
    } catch (error) {
      await this.#closeSource(transfer);
      throw error;
    }
  }

  /** Sends `path` to `peer` and waits for the result. */
  async sendFile(peer: string, path: string, options: { name?: string } = {}): Promise<SendReport> {
    return (await this.start(peer, path, options)).done;
  }

  /**
   * Continues a transfer after a resumable failure or a restart: re-OFFERs the same id, and the receiver
   * answers with how much it holds. A transfer still running is returned as it is.
   */
  async resume(transferId: string): Promise<OutgoingTransfer> {
    const known = this.#transfers.get(transferId);
    if (known !== undefined) {
      if (known.phase !== 'idle' && known.done !== undefined) {
        return { transferId, name: known.name, size: known.size, done: known.done };
      }
      await this.#checkSource(known);
      return this.#begin(known);
    }
    const state = await this.#store.load(transferId);
    const id = transferIdFromHex(transferId);
    if (state === undefined || id === null) {
      throw new TransferSourceError(transferId, 'no such transfer to resume');
    }
    const transfer = this.#track(state, id);
    try {
      await this.#checkSource(transfer);
    } catch (error) {
      this.#transfers.delete(transferId);
      throw error;
    }
    return this.#begin(transfer);
  }

  /** Transfers a restart can resume (their state files). */
  pending(): Promise<PersistedSend[]> {
    return this.#store.list();
  }

  /** Every transfer of ours, running or waiting for `resume`: how far each has come. */
  inProgress(): {
    transferId: string;
    peer: string;
    name: string;
    size: number;
    bytesAcked: number;
    phase: Phase;
  }[] {
    return [...this.#transfers.values()].map((transfer) => ({
      transferId: transfer.hex,
      peer: transfer.peer,
      name: transfer.name,
      size: transfer.size,
      bytesAcked: transfer.ackedUpTo,
      phase: transfer.phase,
    }));
  }

  /** Whether `transferId` is one of ours (running or waiting for `resume`). */
  has(transferId: string): boolean {
    return this.#transfers.has(transferId);
  }

  /**
   * The peer is out of reach (no link, no route): attempts to it end now, resumably, rather than at the
   * idle timeout. What was sent and not acknowledged may be lost with the receiver (it restarted, say):
   * waiting for an acknowledgement that will never come would stall the transfer for that long.
   */
  interrupt(peer: string): void {
    for (const transfer of this.#transfers.values()) {
      if (transfer.peer !== peer || transfer.phase === 'idle') continue;
      void this.#fail(transfer, new TransferLinkError(transfer.hex, { cause: new ChannelDownError(peer) }));
    }
  }

  /** Cancels a transfer for good: tells the peer, forgets the state. */
  async cancel(transferId: string, reason = 'cancelled by the sender'): Promise<void> {
    const transfer = this.#transfers.get(transferId);
    const id = transferIdFromHex(transferId);
    if (transfer !== undefined) {
      this.#sendQuietly(transfer.peer, { kind: 'cancel', transferId: transfer.id, reason });
      if (transfer.phase === 'idle') await this.#forget(transferId);
      else await this.#fail(transfer, new TransferCancelledError(transferId, 'local', reason));
      return;
    }
    const state = await this.#store.load(transferId);
    if (state !== undefined && id !== null) {
      this.#sendQuietly(state.peer, { kind: 'cancel', transferId: id, reason });
      await this.#store.delete(transferId);
    }
  }

  /** Handles a message from the receiver side (ACCEPT, REJECT, CHUNK-ACK, RESULT, CANCEL). Never throws. */
  async handle(from: string, message: TransferMessage): Promise<void> {
    const transfer = this.#transfers.get(transferIdToHex(message.transferId));
    if (transfer === undefined) {
      this.counters.increment('unknown-transfer');
      return;
    }
    if (transfer.peer !== from) {
      this.counters.increment('wrong-peer');
      return;
    }
    if (transfer.phase === 'idle') {
      this.counters.increment('unexpected');
      return;
    }
    this.#armTimer(transfer);
    switch (message.kind) {
      case 'accept':
        return this.#onAccept(transfer, message.resumeFrom, message.window);
      case 'chunk-ack':
        return this.#onAck(transfer, message.upTo);
      case 'reject':
        return this.#fail(transfer, new TransferRejectedError(transfer.hex, message.code, message.message));
      case 'transfer-result':
        if (message.outcome.ok) return this.#onSuccess(transfer);
        return this.#fail(
          transfer,
          new TransferFailedError(transfer.hex, message.outcome.code, message.outcome.message),
        );
      case 'cancel':
        return this.#fail(transfer, new TransferCancelledError(transfer.hex, 'peer', message.reason));
      default:
        this.counters.increment('unexpected');
    }
  }

  /** Stops every running transfer (resumable after a restart); keeps the state files. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const transfer of [...this.#transfers.values()]) {
      if (transfer.phase !== 'idle') await this.#fail(transfer, new TransferClosedError(transfer.hex));
      this.#transfers.delete(transfer.hex);
    }
  }

  #track(state: PersistedSend, id: Uint8Array): Outgoing {
    const transfer: Outgoing = {
      id,
      hex: state.transferId,
      peer: state.peer,
      path: state.path,
      name: state.name,
      size: state.size,
      mtimeMs: state.mtimeMs,
      hash: new SendHash(createHash('sha256'), 0),
      phase: 'idle',
      attempt: 0,
      chunkSize: this.#chunkSize,
      window: 1,
      nextOffset: 0,
      ackedUpTo: 0,
      resumedFrom: 0,
      attemptStartedAt: this.#now(),
      lastProgressAt: Number.NEGATIVE_INFINITY,
      source: undefined,
      buffers: undefined,
      timer: undefined,
      pumping: false,
      settle: undefined,
      done: undefined,
    };
    this.#transfers.set(transfer.hex, transfer);
    return transfer;
  }

  #begin(transfer: Outgoing): OutgoingTransfer {
    if (this.#closed) throw new TransferClosedError(transfer.hex);
    transfer.attempt += 1;
    transfer.phase = 'offering';
    transfer.chunkSize = this.#chunkSizeFor(transfer.peer);
    transfer.nextOffset = 0;
    transfer.ackedUpTo = 0;
    transfer.done = new Promise<SendReport>((resolve, reject) => {
      transfer.settle = { resolve, reject };
    });
    // The caller may only look at events; an unobserved failure must not be an unhandled rejection.
    transfer.done.catch(() => {});
    this.#armTimer(transfer);
    this.#sendOrFail(
      transfer,
      encodeTransfer({
        kind: 'offer',
        transferId: transfer.id,
        name: transfer.name,
        size: transfer.size,
        chunkSize: transfer.chunkSize,
      }),
    );
    return { transferId: transfer.hex, name: transfer.name, size: transfer.size, done: transfer.done };
  }

  async #onAccept(transfer: Outgoing, resumeFrom: number, window: number): Promise<void> {
    if (transfer.phase !== 'offering') {
      this.counters.increment('unexpected');
      return;
    }
    if (resumeFrom > transfer.size) {
      this.#sendQuietly(transfer.peer, { kind: 'cancel', transferId: transfer.id, reason: 'bad resumeFrom' });
      return this.#fail(
        transfer,
        new TransferProtocolError(
          transfer.hex,
          `resumeFrom ${resumeFrom} is beyond the size ${transfer.size}`,
        ),
      );
    }
    transfer.phase = 'sending';
    transfer.window = window;
    transfer.nextOffset = resumeFrom;
    transfer.ackedUpTo = resumeFrom;
    transfer.resumedFrom = resumeFrom;
    this.emit('accepted', { transferId: transfer.hex, peer: transfer.peer, resumeFrom, window });
    const attempt = transfer.attempt;
    if (!(await this.#prepare(transfer, resumeFrom))) return;
    if (transfer.phase !== 'sending' || transfer.attempt !== attempt) return;
    transfer.attemptStartedAt = this.#now();
    this.#armTimer(transfer);
    await this.#pump(transfer);
  }

  /**
   * Opens the file and brings the hash to `resumeFrom`: where it stands or a chunk start it kept, else by
   * hashing the file up to there again. False when the attempt ended meanwhile, or failed (the peer told).
   */
  async #prepare(transfer: Outgoing, resumeFrom: number): Promise<boolean> {
    const attempt = transfer.attempt;
    const ended = () => transfer.attempt !== attempt || transfer.phase !== 'sending';
    try {
      if (transfer.source === undefined) {
        const source = await SourceFile.open(transfer.path, transfer.size);
        if (ended()) {
          await source.close().catch(() => {});
          return false;
        }
        transfer.source = source;
      }
      if (!transfer.hash.rewind(resumeFrom)) {
        // Reading the file again is no silence of the peer's: a large file on an SD card takes a while.
        if (transfer.timer !== undefined) clearTimeout(transfer.timer);
        transfer.hash = new SendHash(await transfer.source.hashPrefix(resumeFrom), resumeFrom);
      }
    } catch (error) {
      if (ended()) return false;
      await this.#failUnreadable(transfer, error);
      return false;
    }
    transfer.buffers = new ChunkBuffers(transfer.chunkSize + CHUNK_OVERHEAD_BYTES);
    return true;
  }

  async #onAck(transfer: Outgoing, upTo: number): Promise<void> {
    if (transfer.phase !== 'sending') {
      this.counters.increment('unexpected');
      return;
    }
    if (upTo > transfer.nextOffset) {
      this.counters.increment('bad-ack');
      return;
    }
    if (upTo <= transfer.ackedUpTo) return;
    transfer.ackedUpTo = upTo;
    transfer.hash.acknowledged(upTo);
    this.#progress(transfer);
    await this.#pump(transfer);
  }

  async #onSuccess(transfer: Outgoing): Promise<void> {
    if (transfer.phase !== 'finishing') {
      this.counters.increment('unexpected');
      return;
    }
    this.#transfers.delete(transfer.hex);
    this.#stop(transfer);
    await this.#closeSource(transfer);
    await this.#store.delete(transfer.hex);
    const report: SendReport = {
      transferId: transfer.hex,
      peer: transfer.peer,
      name: transfer.name,
      size: transfer.size,
      sha256: Buffer.from(transfer.hash.digest()).toString('hex'),
      resumedFrom: transfer.resumedFrom,
    };
    transfer.settle?.resolve(report);
    this.emit('sent', report);
  }

  /** Sends chunks while the window allows, then DONE once everything is acknowledged. */
  async #pump(transfer: Outgoing): Promise<void> {
    if (transfer.pumping) return;
    transfer.pumping = true;
    const attempt = transfer.attempt;
    const buffers = transfer.buffers;
    try {
      const credit = () => transfer.window * transfer.chunkSize;
      while (
        buffers !== undefined &&
        transfer.phase === 'sending' &&
        transfer.attempt === attempt &&
        transfer.nextOffset < transfer.size &&
        transfer.nextOffset - transfer.ackedUpTo < credit()
      ) {
        const offset = transfer.nextOffset;
        const length = Math.min(transfer.chunkSize, transfer.size - offset);
        const buffer = buffers.take();
        const chunk = layoutChunk(buffer, transfer.id, offset, length);
        const read = await this.#read(transfer, chunk.data, offset);
        if (!read || transfer.phase !== 'sending' || transfer.attempt !== attempt) {
          buffers.give(buffer);
          return;
        }
        transfer.nextOffset = offset + length;
        this.#sendOrFail(transfer, chunk.payload, () => buffers.give(buffer));
        // Hashed once on its way (sealed and written to the socket), while the receiver takes it.
        transfer.hash.add(chunk.data);
        this.#progress(transfer);
      }
      if (
        transfer.phase === 'sending' &&
        transfer.attempt === attempt &&
        transfer.ackedUpTo === transfer.size
      ) {
        await this.#finish(transfer);
      }
    } finally {
      transfer.pumping = false;
    }
  }

  /** Every byte is acknowledged: DONE with the SHA-256, unless the file changed since the transfer began. */
  async #finish(transfer: Outgoing): Promise<void> {
    const attempt = transfer.attempt;
    const now = await sourceVersion(transfer.hex, transfer.path).catch(() => undefined);
    if (transfer.phase !== 'sending' || transfer.attempt !== attempt) return;
    if (now === undefined || !isSameVersion(now, transfer)) {
      // What went may mix two versions of the file, and the hash with them: nothing to deliver.
      this.#sendQuietly(transfer.peer, { kind: 'cancel', transferId: transfer.id, reason: 'source changed' });
      return this.#fail(
        transfer,
        new TransferSourceError(transfer.hex, `${transfer.path} changed while it was being sent`),
      );
    }
    const sha256 = transfer.hash.digest();
    transfer.phase = 'finishing';
    this.#armTimer(transfer);
    this.#sendOrFail(transfer, encodeTransfer({ kind: 'done', transferId: transfer.id, sha256 }));
  }

  /** Fills `buffer` from the file at `offset`; false (the attempt failed, the peer told) when it cannot. */
  async #read(transfer: Outgoing, buffer: Uint8Array, offset: number): Promise<boolean> {
    try {
      const source = transfer.source;
      if (source === undefined) throw new Error('file is not open');
      await source.read(buffer, offset);
      return true;
    } catch (error) {
      await this.#failUnreadable(transfer, error);
      return false;
    }
  }

  /** The file could not be read: the receiver is told (CANCEL `source unreadable`) and the transfer ends. */
  async #failUnreadable(transfer: Outgoing, error: unknown): Promise<void> {
    this.#sendQuietly(transfer.peer, {
      kind: 'cancel',
      transferId: transfer.id,
      reason: 'source unreadable',
    });
    await this.#fail(
      transfer,
      new TransferSourceError(transfer.hex, 'cannot read the file', { cause: error }),
    );
  }

  /** What fits the link to `peer` now, within the configured chunk size. */
  #chunkSizeFor(peer: string): number {
    const limit = this.#channel.payloadLimit?.(peer) ?? this.#channel.maxPayloadBytes;
    return Math.max(1, Math.min(this.#chunkSize, limit - CHUNK_OVERHEAD_BYTES));
  }

  /** A progress event, unless one went out less than progressIntervalMs ago (the last one always goes). */
  #progress(transfer: Outgoing): void {
    const now = this.#now();
    const last = transfer.ackedUpTo === transfer.size;
    if (!last && now - transfer.lastProgressAt < this.#progressIntervalMs) return;
    transfer.lastProgressAt = now;
    const seconds = (now - transfer.attemptStartedAt) / 1000;
    const acked = transfer.ackedUpTo - transfer.resumedFrom;
    this.emit('progress', {
      transferId: transfer.hex,
      peer: transfer.peer,
      bytesSent: transfer.nextOffset,
      bytesAcked: transfer.ackedUpTo,
      total: transfer.size,
      rateBps: seconds > 0 ? Math.round(acked / seconds) : 0,
    });
  }

  /**
   * Sends; a failure ends the current attempt with a resumable TransferLinkError. `settled` runs once the
   * channel no longer holds `payload`.
   */
  #sendOrFail(transfer: Outgoing, payload: Uint8Array, settled?: () => void): void {
    const attempt = transfer.attempt;
    this.#channel.send(transfer.peer, payload).then(settled, (error: unknown) => {
      settled?.();
      if (
        transfer.attempt === attempt &&
        transfer.phase !== 'idle' &&
        this.#transfers.get(transfer.hex) === transfer
      ) {
        void this.#fail(transfer, new TransferLinkError(transfer.hex, { cause: error }));
      }
    });
  }

  #sendQuietly(peer: string, message: TransferMessage): void {
    this.#channel.send(peer, encodeTransfer(message)).catch(() => this.counters.increment('send-failed'));
  }

  #armTimer(transfer: Outgoing): void {
    if (transfer.timer !== undefined) clearTimeout(transfer.timer);
    const attempt = transfer.attempt;
    transfer.timer = setTimeout(() => {
      if (transfer.attempt !== attempt || transfer.phase === 'idle') return;
      const waitingFor =
        transfer.phase === 'offering' ? 'accept' : transfer.phase === 'sending' ? 'chunk-ack' : 'result';
      void this.#fail(transfer, new TransferTimeoutError(transfer.hex, waitingFor, this.#idleTimeoutMs));
    }, this.#idleTimeoutMs);
    transfer.timer.unref();
  }

  #stop(transfer: Outgoing): void {
    if (transfer.timer !== undefined) clearTimeout(transfer.timer);
    transfer.timer = undefined;
    transfer.phase = 'idle';
  }

  /** Ends the attempt: resumable errors keep the transfer (and its state file), the rest forget it. */
  async #fail(transfer: Outgoing, error: TransferError): Promise<void> {
    if (transfer.phase === 'idle' && transfer.settle === undefined) return;
    this.#stop(transfer);
    const settle = transfer.settle;
    transfer.settle = undefined;
    if (!error.resumable) {
      this.#transfers.delete(transfer.hex);
      await this.#store.delete(transfer.hex);
    }
    await this.#closeSource(transfer);
    settle?.reject(error);
    this.emit('failed', { transferId: transfer.hex, peer: transfer.peer, error });
  }

  async #closeSource(transfer: Outgoing): Promise<void> {
    const source = transfer.source;
    transfer.source = undefined;
    transfer.buffers = undefined;
    await source?.close().catch(() => {});
  }

  /** The file must still be what was offered (same size and modification time). */
  async #checkSource(transfer: Outgoing): Promise<void> {
    let info: SourceVersion;
    try {
      info = await sourceVersion(transfer.hex, transfer.path);
    } catch (error) {
      await this.#forget(transfer.hex);
      throw new TransferSourceError(transfer.hex, `cannot read ${transfer.path}`, { cause: error });
    }
    if (!isSameVersion(info, transfer)) {
      await this.#forget(transfer.hex);
      throw new TransferSourceError(transfer.hex, `${transfer.path} changed since the transfer began`);
    }
  }

  async #forget(hex: string): Promise<void> {
    this.#transfers.delete(hex);
    await this.#store.delete(hex);
  }
}
