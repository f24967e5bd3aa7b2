// What a transfer receiver is told (its options) and tells (its events): the receiving side's public face,
// apart from the state machine in receiver.ts.
import type { RejectCode, ResultCode } from '../../protocol/transfer.js';
import type { TransferReceiverFs } from './inbox-files.js';
import type { QuotaRefusal } from './inbox-quota.js';

export interface IncomingOffer {
  transferId: string;
  from: string;
  name: string;
  size: number;
}

export interface TransferReceiverOptions {
  /** Where finished files appear (created if missing). */
  inboxDir: string;
  /** Largest file accepted (default 1 GiB). */
  maxBytes?: number;
  /**
   * Bytes one peer may have in the inbox: the files it pushed that are still there, its parts (at their whole
   * size) and the offered file (default: maxBytes, so that any file the limit takes can come).
   */
  maxBytesPerPeer?: number;
  /** Files one peer may have in the inbox, its parts included (default 1024). */
  maxFilesPerPeer?: number;
  /** Files from all peers the inbox may hold, parts included (default 4096); bounds the ledger of senders. */
  maxInboxFiles?: number;
  /** Where the ledger of who pushed each file in the inbox is kept (default: in memory only). */
  sendersFile?: string;
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
  /**
   * The part is synced and its sidecar's offset persisted every this many bytes (default 8 MiB), in the
   * background while the next chunks are written.
   */
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
  /** The name the sender offered; the file's is that cleaned (protocol/file-name.ts), maybe with " (n)". */
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

/** Why an offer was refused: its REJECT code, or the quota behind a `disk-full`. */
export type RejectCause = RejectCode | QuotaRefusal['cause'];

export interface TransferReceiverEvents {
  offer: (offer: IncomingOffer & { resumeFrom: number }) => void;
  rejected: (event: IncomingOffer & { code: RejectCode; cause: RejectCause; message: string }) => void;
  progress: (progress: ReceiveProgress) => void;
  received: (file: ReceivedFile) => void;
  failed: (failure: ReceiveFailure) => void;
}
