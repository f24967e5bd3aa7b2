// Typed errors of bulk transfer. Callers branch on the class (or `code`) and on `resumable`, never on text:
// a resumable failure (the peer went silent, the link dropped) keeps the sender's state so `resume` can
// continue where the receiver stopped; the others are final.
import { NearmeshError } from '../../core/errors.js';
import type { RejectCode, ResultCode } from '../../protocol/transfer.js';

export class TransferError extends NearmeshError {
  constructor(
    code: string,
    /** The transfer's id as 32 hex digits. */
    readonly transferId: string,
    message: string,
    /** Whether `TransferSender.resume(transferId)` can continue this transfer. */
    readonly resumable: boolean,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/** The receiver refused the OFFER (too-large, disk-full, refused, bad-name). */
export class TransferRejectedError extends TransferError {
  constructor(
    transferId: string,
    readonly reason: RejectCode,
    detail: string,
  ) {
    super(
      'transfer-rejected',
      transferId,
      `transfer ${transferId} rejected by the receiver: ${reason}: ${detail}`,
      false,
    );
  }
}

/** The receiver got every byte but could not keep the file (hash-mismatch, disk-full, io-error, incomplete). */
export class TransferFailedError extends TransferError {
  constructor(
    transferId: string,
    readonly reason: ResultCode,
    detail: string,
  ) {
    super(
      'transfer-failed',
      transferId,
      `transfer ${transferId} failed at the receiver: ${reason}: ${detail}`,
      false,
    );
  }
}

/** One side cancelled the transfer. */
export class TransferCancelledError extends TransferError {
  constructor(
    transferId: string,
    readonly by: 'local' | 'peer',
    readonly reason: string,
  ) {
    super(
      'transfer-cancelled',
      transferId,
      `transfer ${transferId} cancelled by the ${by} side: ${reason}`,
      false,
    );
  }
}

/** The peer said nothing about the transfer for too long (it may be gone): resumable. */
export class TransferTimeoutError extends TransferError {
  constructor(
    transferId: string,
    /** What we were waiting for. */
    readonly waitingFor: 'accept' | 'chunk-ack' | 'result',
    readonly timeoutMs: number,
  ) {
    super(
      'transfer-timeout',
      transferId,
      `transfer ${transferId}: no ${waitingFor} from the peer within ${timeoutMs} ms`,
      true,
    );
  }
}

/** The channel could not deliver a message (link dropped): resumable. */
export class TransferLinkError extends TransferError {
  constructor(transferId: string, options?: { cause?: unknown }) {
    const cause = options?.cause instanceof Error ? `: ${options.cause.message}` : '';
    super(
      'transfer-link',
      transferId,
      `transfer ${transferId}: the link to the peer failed${cause}`,
      true,
      options,
    );
  }
}

/** The local file cannot be sent: unreadable, changed since the transfer began, or its name is unsafe. */
export class TransferSourceError extends TransferError {
  constructor(transferId: string, detail: string, options?: { cause?: unknown }) {
    const reason = options?.cause === undefined ? '' : `: ${fileErrorReason(options.cause)}`;
    super('transfer-source', transferId, `transfer ${transferId}: ${detail}${reason}`, false, options);
  }
}

/** Why a file could not be read, as a person says it ("no such file"), not as errno does. */
export function fileErrorReason(error: unknown): string {
  switch ((error as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a directory';
    case 'EIO':
      return 'input/output error (a failing SD card?)';
    default:
      return error instanceof Error ? error.message : String(error);
  }
}

/** The peer broke the protocol (e.g. resumeFrom beyond the size). */
export class TransferProtocolError extends TransferError {
  constructor(transferId: string, detail: string) {
    super(
      'transfer-protocol',
      transferId,
      `transfer ${transferId}: the peer broke the protocol: ${detail}`,
      false,
    );
  }
}

/** The agent is stopping: resumable after the restart. */
export class TransferClosedError extends TransferError {
  constructor(transferId: string) {
    super('transfer-closed', transferId, `transfer ${transferId}: the transfer service was closed`, true);
  }
}

/** A name no receiver takes (protocol/file-name.ts): refused before anything is sent. */
export class FileNameError extends NearmeshError {
  constructor(
    readonly fileName: string,
    readonly problem: string,
  ) {
    super('bad-file-name', `file name ${JSON.stringify(fileName)} ${problem}; choose another with --name`);
  }
}
