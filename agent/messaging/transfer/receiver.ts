// The receiving half of bulk transfer. An OFFER is checked before anything touches the disk (name, size
// limit, free space with a margin, the application's say); bytes go to `<inboxDir>/.<id>.part`, in order,
// hashed as they arrive, with a sidecar `<inboxDir>/.<id>.state.json` (who, what, how far) persisted every
// so often after an fdatasync, so a link drop or an agent restart resumes from what is held. DONE checks the
// SHA-256 and only then gives the file its name (" (1)" style when taken). A full disk or a bad hash
// removes the part and the sidecar: no half file is ever left under a real name.
//
// Whatever a peer sends is checked here: unknown ids, chunks beyond the size or out of order, a flood of
// messages, a transfer id of someone else's are counted drops (`counters`), never a crash or a file outside
// inboxDir.
import { createHash, type Hash } from 'node:crypto';
import { constants } from 'node:fs';
import {
  type FileHandle,
  link,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  stat,
  statfs,
  unlink,
} from 'node:fs/promises';
import { extname, join } from 'node:path';
import { writeFileAtomic } from '../../core/atomic-file.js';
import { setBounded } from '../../core/bounded-map.js';
import { Counters } from '../../core/counters.js';
import { TypedEmitter } from '../../core/events.js';
import {
  type ChunkMessage,
  encodeTransfer,
  fileNameProblem,
  MAX_CHUNK_BYTES,
  MAX_FILE_NAME_BYTES,
  MAX_WINDOW,
  type OfferMessage,
  type RejectCode,
  type ResultCode,
  type TransferMessage,
  transferIdToHex,
} from '../../protocol/transfer.js';
import { utf8Length } from '../../protocol/utf8.js';
import type { TransferChannel } from './channel.js';

/** The file-system calls a test (or an odd platform) may replace. */
export interface TransferReceiverFs {
  /** Free space of the file system holding `path` (as fs.statfs reports it). */
  statfs(path: string): Promise<{ bavail: number | bigint; bsize: number | bigint }>;
  /** Writes all of `bytes` at `position`. */
  write(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void>;
}

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

interface Sidecar {
  version: 1;
  transferId: string;
  from: string;
  name: string;
  size: number;
  sha256: string;
  /** Bytes at the start of the part known to be on disk. */
  offset: number;
}

interface Incoming {
  id: Uint8Array;
  hex: string;
  from: string;
  name: string;
  size: number;
  sha256: Uint8Array;
  chunkSize: number;
  /** Chunks granted in flight by the last ACCEPT (CHUNK-ACKs follow it). */
  window: number;
  written: number;
  persisted: number;
  lastAck: number;
  hash: Hash;
  handle: FileHandle;
  timer: NodeJS.Timeout | undefined;
  state: 'receiving' | 'closed';
}

interface Lane {
  tail: Promise<void>;
  depth: number;
  /** Chunk bytes queued. */
  bytes: number;
}

const GiB = 1024 * 1024 * 1024;
const MiB = 1024 * 1024;
/** Ids of finished transfers remembered, so a DONE repeated after a lost RESULT is answered, not refused. */
const COMPLETED_MEMORY = 256;

export class TransferReceiver extends TypedEmitter<TransferReceiverEvents> {
  /** Drops and refusals by reason (unknown-transfer, wrong-peer, bad-offset, out-of-order, flood, ...). */
  readonly counters = new Counters();
  readonly #channel: TransferChannel;
  readonly #inboxDir: string;
  readonly #maxBytes: number;
  readonly #margin: number;
  readonly #window: number;
  readonly #windowBytes: number;
  readonly #maxChunk: number;
  readonly #maxActive: number;
  readonly #idleTimeoutMs: number;
  readonly #persistEvery: number;
  readonly #maxQueued: number;
  readonly #fileMode: number;
  readonly #accept: TransferReceiverOptions['accept'];
  readonly #fs: TransferReceiverFs;
  readonly #transfers = new Map<string, Incoming>();
  readonly #lanes = new Map<string, Lane>();
  readonly #completed = new Map<string, { from: string; size: number }>();
  /** Offers past the checks whose files are being set up (they count against maxActive). */
  #opening = 0;
  #closed = false;

  constructor(channel: TransferChannel, options: TransferReceiverOptions) {
    super();
    this.#channel = channel;
    this.#inboxDir = options.inboxDir;
    this.#maxBytes = options.maxBytes ?? GiB;
    this.#margin = options.diskMarginBytes ?? 16 * MiB;
    this.#window = Math.max(1, Math.min(MAX_WINDOW, options.window ?? 16));
    this.#windowBytes = options.windowBytes ?? 8 * MiB;
    this.#maxChunk = Math.max(1, Math.min(MAX_CHUNK_BYTES, options.maxChunkBytes ?? channel.maxPayloadBytes));
    this.#maxActive = options.maxActive ?? 8;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 120_000;
    // An fdatasync and a sidecar rename per MiB cost a fifth of a loopback push; a restart re-sends at most this.
    this.#persistEvery = options.persistEveryBytes ?? 8 * MiB;
    this.#maxQueued = options.maxQueuedPerTransfer ?? 4 * this.#window;
    this.#fileMode = options.fileMode ?? 0o644;
    this.#accept = options.accept;
    this.#fs = {
      statfs: options.fs?.statfs ?? ((path) => statfs(path)),
      write: options.fs?.write ?? writeAll,
    };
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
    return this.#enqueue(hex, () => this.#process(from, message, hex), bytes);
  }

  /** Cancels a transfer being received: tells the sender, removes the part. */
  cancel(transferId: string, reason = 'cancelled by the receiver'): Promise<void> {
    return this.#enqueue(
      transferId,
      async () => {
        const transfer = this.#transfers.get(transferId);
        if (transfer === undefined) return;
        await this.#discard(transfer);
        this.#sendQuietly(transfer.from, { kind: 'cancel', transferId: transfer.id, reason });
        this.emit('failed', { ...describe(transfer), code: 'cancelled', message: reason });
      },
      undefined,
    );
  }

  /**
   * Runs `work` after everything queued for the transfer. A peer's message (`bytes` given: what it holds)
   * is dropped as a flood when too many messages or bytes are queued already; our own work never is.
   */
  #enqueue(hex: string, work: () => Promise<void>, bytes: number | undefined): Promise<void> {
    let lane = this.#lanes.get(hex);
    if (lane === undefined) {
      lane = { tail: Promise.resolve(), depth: 0, bytes: 0 };
      this.#lanes.set(hex, lane);
    }
    const held = bytes ?? 0;
    if (
      bytes !== undefined &&
      (lane.depth >= this.#maxQueued || lane.bytes + held > 2 * this.#windowBytes + MAX_CHUNK_BYTES)
    ) {
      this.counters.increment('flood');
      return Promise.resolve();
    }
    lane.depth += 1;
    lane.bytes += held;
    const current = lane;
    const run = current.tail
      .then(work)
      .catch(() => this.counters.increment('internal-error'))
      .finally(() => {
        current.depth -= 1;
        current.bytes -= held;
        if (current.depth === 0 && this.#lanes.get(hex) === current) this.#lanes.delete(hex);
      });
    current.tail = run;
    return run;
  }

  /** Removes parts and sidecars no transfer has touched for `maxAgeMs` (abandoned by their senders). */
  async sweep(maxAgeMs: number, now = Date.now()): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.#inboxDir);
    } catch {
      return 0;
    }
    let removed = 0;
    for (const name of names) {
      const match = /^\.([0-9a-f]{32})\.(part|state\.json)$/.exec(name);
      // Not one being received, nor one whose OFFER is being handled (a resume of an old part).
      if (match === null || this.#transfers.has(match[1] as string) || this.#lanes.has(match[1] as string))
        continue;
      const path = join(this.#inboxDir, name);
      try {
        if (now - (await stat(path)).mtimeMs < maxAgeMs) continue;
        await unlink(path);
        removed += 1;
      } catch {
        // Gone meanwhile.
      }
    }
    return removed;
  }

  /** Parks every transfer (sidecar persisted, part kept for a resume) and stops taking messages. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#lanes.values()].map((lane) => lane.tail));
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
      if (!sameFile(existing, offer)) {
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
      await mkdir(this.#inboxDir, { recursive: true });
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
        await this.#removeFiles(hex);
      }
    }
    // Bytes the other transfers under way will still write are spoken for.
    let reserved = 0;
    for (const other of this.#transfers.values()) reserved += other.size - other.written;
    const needed = offer.size - held + this.#margin + reserved;
    try {
      const space = await this.#fs.statfs(this.#inboxDir);
      const free = Number(space.bavail) * Number(space.bsize);
      if (free < needed) {
        if (held === 0) await this.#removeFiles(hex);
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
    let transfer: Incoming;
    try {
      transfer = await this.#openPart(from, offer, hex, held);
    } catch (error) {
      await this.#removeFiles(hex);
      return reject(
        isDiskFull(error) ? 'disk-full' : 'refused',
        `cannot create the file: ${errorText(error)}`,
      );
    }
    this.#transfers.set(hex, transfer);
    this.#armTimer(transfer);
    this.#sendAccept(transfer, described);
  }

  /** Opens (or reopens, rehashing what is held) the part file and writes the first sidecar. */
  async #openPart(from: string, offer: OfferMessage, hex: string, held: number): Promise<Incoming> {
    const path = this.#partPath(hex);
    const hash = createHash('sha256');
    let handle: FileHandle | undefined;
    let written = held;
    try {
      if (held > 0) {
        handle = await open(path, constants.O_RDWR | constants.O_NOFOLLOW);
        const size = (await handle.stat()).size;
        written = Math.min(held, size);
        await handle.truncate(written);
        await hashRange(handle, written, hash);
      } else {
        handle = await open(
          path,
          constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW,
          0o600,
        );
      }
      const transfer: Incoming = {
        id: offer.transferId,
        hex,
        from,
        name: offer.name,
        size: offer.size,
        sha256: offer.sha256,
        chunkSize: offer.chunkSize,
        window: 1,
        written,
        persisted: written,
        lastAck: written,
        hash,
        handle,
        timer: undefined,
        state: 'receiving',
      };
      await this.#writeSidecar(transfer);
      return transfer;
    } catch (error) {
      await handle?.close().catch(() => {});
      throw error;
    }
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
    const end = chunk.offset + chunk.bytes.length;
    if (end > transfer.size) {
      this.counters.increment('bad-offset');
      return;
    }
    if (chunk.bytes.length > transfer.chunkSize) {
      this.counters.increment('bad-chunk');
      return;
    }
    if (end <= transfer.written) {
      this.counters.increment('duplicate');
      return;
    }
    if (chunk.offset > transfer.written) {
      // The channel is ordered, so a gap means something was lost: the sender's timeout and resume recover.
      const beyond = chunk.offset >= transfer.written + transfer.window * transfer.chunkSize;
      this.counters.increment(beyond ? 'beyond-window' : 'out-of-order');
      return;
    }
    this.#armTimer(transfer);
    const bytes = chunk.bytes.subarray(transfer.written - chunk.offset);
    try {
      await this.#fs.write(transfer.handle, bytes, transfer.written);
    } catch (error) {
      return this.#abort(transfer, isDiskFull(error) ? 'disk-full' : 'io-error', errorText(error));
    }
    transfer.hash.update(bytes);
    transfer.written += bytes.length;
    if (transfer.written - transfer.persisted >= this.#persistEvery) {
      try {
        await transfer.handle.datasync();
        await this.#writeSidecar(transfer);
        transfer.persisted = transfer.written;
      } catch (error) {
        return this.#abort(transfer, isDiskFull(error) ? 'disk-full' : 'io-error', errorText(error));
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
      await transfer.handle.datasync();
      await transfer.handle.chmod(this.#fileMode);
      await transfer.handle.close();
      transfer.state = 'closed';
      path = await this.#place(this.#partPath(hex), transfer.name);
    } catch (error) {
      return this.#abort(transfer, isDiskFull(error) ? 'disk-full' : 'io-error', errorText(error));
    }
    this.#forget(transfer);
    await unlink(this.#sidecarPath(hex)).catch(() => {});
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
      this.emit('failed', { ...describe(transfer), code: 'cancelled', message: 'cancelled by the sender' });
      return;
    }
    const sidecar = await this.#readSidecar(hex);
    if (sidecar !== undefined && sidecar.from === from) await this.#removeFiles(hex);
    else this.counters.increment('unknown-transfer');
  }

  /** Gives up on a transfer: tells the sender why, removes the part and the sidecar. */
  async #abort(transfer: Incoming, code: ResultCode, message: string): Promise<void> {
    this.counters.increment(`failed-${code}`);
    // Files first: once the sender hears of the failure, nothing of the transfer is left.
    await this.#discard(transfer);
    this.#sendQuietly(transfer.from, {
      kind: 'transfer-result',
      transferId: transfer.id,
      outcome: { ok: false, code, message },
    });
    this.emit('failed', { ...describe(transfer), code, message });
  }

  async #discard(transfer: Incoming): Promise<void> {
    this.#forget(transfer);
    if (transfer.state !== 'closed') await transfer.handle.close().catch(() => {});
    transfer.state = 'closed';
    await this.#removeFiles(transfer.hex);
  }

  /** Frees the memory of a silent transfer; the part and the persisted sidecar stay for a resume. */
  async #park(transfer: Incoming): Promise<void> {
    this.#forget(transfer);
    if (transfer.state === 'closed') return;
    transfer.state = 'closed';
    try {
      await transfer.handle.datasync();
      await this.#writeSidecar(transfer);
    } catch {
      // The older sidecar still says what is safely held.
    }
    await transfer.handle.close().catch(() => {});
    this.counters.increment('parked');
  }

  #forget(transfer: Incoming): void {
    if (transfer.timer !== undefined) clearTimeout(transfer.timer);
    transfer.timer = undefined;
    if (this.#transfers.get(transfer.hex) === transfer) this.#transfers.delete(transfer.hex);
  }

  #armTimer(transfer: Incoming): void {
    if (transfer.timer !== undefined) clearTimeout(transfer.timer);
    transfer.timer = setTimeout(() => {
      // Through the transfer's lane, so it never races a chunk being written.
      const lane = this.#lanes.get(transfer.hex);
      const park = async () => {
        if (this.#transfers.get(transfer.hex) === transfer) await this.#park(transfer);
      };
      void (lane === undefined ? park() : lane.tail.then(park)).catch(() => {});
    }, this.#idleTimeoutMs);
    transfer.timer.unref();
  }

  #sendAccept(transfer: Incoming, described: IncomingOffer): void {
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
  #windowFor(transfer: Incoming): number {
    const byBytes = Math.floor(this.#windowBytes / transfer.chunkSize);
    const byLink = this.#channel.windowLimit?.(transfer.from) ?? this.#window;
    return Math.max(1, Math.min(this.#window, byBytes, byLink));
  }

  #sendQuietly(peer: string, message: TransferMessage): void {
    this.#channel.send(peer, encodeTransfer(message)).catch(() => this.counters.increment('send-failed'));
  }

  /** Links the part to `name` (or "name (n).ext" when taken) without ever replacing a file, then unlinks it. */
  async #place(partPath: string, name: string): Promise<string> {
    for (let n = 0; n < 1000; n++) {
      const target = join(this.#inboxDir, n === 0 ? name : numbered(name, n));
      try {
        await link(partPath, target);
        await unlink(partPath).catch(() => {});
        return target;
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        if (code === 'EEXIST') continue;
        if (
          code !== 'EPERM' &&
          code !== 'ENOTSUP' &&
          code !== 'EOPNOTSUPP' &&
          code !== 'ENOSYS' &&
          code !== 'EMLINK'
        ) {
          throw error;
        }
        // No hard links here (e.g. FAT): check, then rename (a tiny window, but only our own process writes here).
        if (await exists(target)) continue;
        await rename(partPath, target);
        return target;
      }
    }
    throw new Error(`no free name for ${name} in ${this.#inboxDir}`);
  }

  async #readSidecar(hex: string): Promise<Sidecar | undefined> {
    let value: Partial<Sidecar>;
    try {
      value = JSON.parse(await readFile(this.#sidecarPath(hex), 'utf8')) as Partial<Sidecar>;
    } catch {
      return undefined;
    }
    const valid =
      value !== null &&
      typeof value === 'object' &&
      value.version === 1 &&
      value.transferId === hex &&
      typeof value.from === 'string' &&
      typeof value.name === 'string' &&
      typeof value.sha256 === 'string' &&
      Number.isSafeInteger(value.size) &&
      Number.isSafeInteger(value.offset) &&
      (value.offset as number) >= 0 &&
      (value.offset as number) <= (value.size as number);
    if (!valid) {
      this.counters.increment('bad-sidecar');
      await this.#removeFiles(hex);
      return undefined;
    }
    return value as Sidecar;
  }

  async #writeSidecar(transfer: Incoming): Promise<void> {
    const sidecar: Sidecar = {
      version: 1,
      transferId: transfer.hex,
      from: transfer.from,
      name: transfer.name,
      size: transfer.size,
      sha256: Buffer.from(transfer.sha256).toString('hex'),
      offset: transfer.written,
    };
    await writeFileAtomic(this.#sidecarPath(transfer.hex), `${JSON.stringify(sidecar)}\n`, 0o600);
  }

  async #removeFiles(hex: string): Promise<void> {
    await unlink(this.#partPath(hex)).catch(() => {});
    await unlink(this.#sidecarPath(hex)).catch(() => {});
  }

  #partPath(hex: string): string {
    return join(this.#inboxDir, `.${hex}.part`);
  }

  #sidecarPath(hex: string): string {
    return join(this.#inboxDir, `.${hex}.state.json`);
  }
}

function sameFile(transfer: Incoming, offer: OfferMessage): boolean {
  return (
    transfer.name === offer.name &&
    transfer.size === offer.size &&
    Buffer.from(transfer.sha256).equals(Buffer.from(offer.sha256))
  );
}

function describe(transfer: Incoming): { transferId: string; from: string; name: string } {
  return { transferId: transfer.hex, from: transfer.from, name: transfer.name };
}

async function writeAll(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}

/** Feeds the first `length` bytes of the file to `hash` (a resume after a restart). */
async function hashRange(handle: FileHandle, length: number, hash: Hash): Promise<void> {
  const buffer = new Uint8Array(Math.min(length, MiB) || 1);
  let position = 0;
  while (position < length) {
    const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, length - position), position);
    if (bytesRead === 0) throw new Error('part file shorter than its sidecar says');
    hash.update(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
}

/** "photo.jpg" → "photo (2).jpg", shortened if needed to stay within MAX_FILE_NAME_BYTES. */
export function numbered(name: string, n: number): string {
  let extension = extname(name);
  let base = name.slice(0, name.length - extension.length);
  if (base === '') {
    base = extension;
    extension = '';
  }
  // An extension too long to keep next to the number is dropped.
  if (utf8Length(` (${n})${extension}`) + 1 > MAX_FILE_NAME_BYTES) extension = '';
  const suffix = ` (${n})${extension}`;
  const chars = [...base];
  while (chars.length > 1 && utf8Length(chars.join('') + suffix) > MAX_FILE_NAME_BYTES) chars.pop();
  return chars.join('') + suffix;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

function isDiskFull(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
