// One transfer as the receiver holds it while it comes in: the file offered, how far its bytes are
// written, synced and acknowledged, how it starts (its part opened, its first sidecar written), how its
// bytes are made durable as they come (persistPart) and the rule for which CHUNK it takes next.
import { createHash, type Hash } from 'node:crypto';
import type { ChunkMessage, OfferMessage } from '../../protocol/transfer.js';
import type { Inbox, PartFile, Sidecar } from './inbox-files.js';

export interface IncomingTransfer {
  id: Uint8Array;
  hex: string;
  from: string;
  /** The name the sender offered (a resume must offer it again). */
  name: string;
  /** The name the file gets in the inbox: the offered one, cleaned (protocol/file-name.ts). */
  fileName: string;
  size: number;
  chunkSize: number;
  /** Chunks granted in flight by the last ACCEPT (CHUNK-ACKs follow it). */
  window: number;
  written: number;
  /** Where the last persistPart began (the sidecar says so once it is done). */
  persisted: number;
  /** The persistPart under way, if one is: it settles with its error, or undefined. */
  persisting: Promise<unknown> | undefined;
  lastAck: number;
  hash: Hash;
  part: PartFile;
  timer: NodeJS.Timeout | undefined;
  state: 'receiving' | 'closed';
}

/**
 * Opens the part of an accepted OFFER (or reopens it, rehashing the `held` bytes an earlier attempt left)
 * and writes its first sidecar. The file will be `fileName` in the inbox.
 */
export async function openIncoming(
  inbox: Inbox,
  from: string,
  offer: OfferMessage,
  fileName: string,
  hex: string,
  held: number,
): Promise<IncomingTransfer> {
  const hash = createHash('sha256');
  const { part, held: written } = await inbox.openPart(hex, held, hash);
  const transfer: IncomingTransfer = {
    id: offer.transferId,
    hex,
    from,
    name: offer.name,
    fileName,
    size: offer.size,
    chunkSize: offer.chunkSize,
    window: 1,
    written,
    persisted: written,
    persisting: undefined,
    lastAck: written,
    hash,
    part,
    timer: undefined,
    state: 'receiving',
  };
  try {
    await inbox.writeSidecar(sidecarOf(transfer));
  } catch (error) {
    await part.close().catch(() => {});
    throw error;
  }
  return transfer;
}

/** Why a CHUNK is dropped, as the counter it goes to. */
export type ChunkDrop = 'bad-offset' | 'bad-chunk' | 'duplicate' | 'beyond-window' | 'out-of-order';

/** Why the transfer drops `chunk`, or undefined when its bytes (or their new tail) are the ones to write next. */
export function chunkDrop(transfer: IncomingTransfer, chunk: ChunkMessage): ChunkDrop | undefined {
  const end = chunk.offset + chunk.bytes.length;
  if (end > transfer.size) return 'bad-offset';
  if (chunk.bytes.length > transfer.chunkSize) return 'bad-chunk';
  if (end <= transfer.written) return 'duplicate';
  if (chunk.offset > transfer.written) {
    // The channel is ordered, so a gap means something was lost: the sender's timeout and resume recover.
    const beyond = chunk.offset >= transfer.written + transfer.window * transfer.chunkSize;
    return beyond ? 'beyond-window' : 'out-of-order';
  }
  return undefined;
}

/**
 * Whether an OFFER under the transfer's id is for the same file (a resume), not another one: same name and
 * size (the hash comes only with DONE, which checks the bytes).
 */
export function offersSameFile(transfer: { name: string; size: number }, offer: OfferMessage): boolean {
  return transfer.name === offer.name && transfer.size === offer.size;
}

/** What the transfer's sidecar says: the bytes written so far are held (once they are synced). */
export function sidecarOf(transfer: IncomingTransfer): Sidecar {
  const { hex: transferId, from, name, size, written: offset } = transfer;
  return { transferId, from, name, size, offset };
}

/**
 * Makes the bytes written so far durable and then says so in the sidecar, in the background: the next
 * chunks are written meanwhile (the sync covers at least every byte written before it began, and the
 * sidecar claims no more). `transfer.persisting` settles with the error that stopped it, or undefined, and
 * never rejects; the caller waits for it before it starts another, and before the transfer ends.
 */
export function persistPart(inbox: Inbox, transfer: IncomingTransfer): void {
  const sidecar = sidecarOf(transfer);
  transfer.persisted = sidecar.offset;
  transfer.persisting = (async () => {
    await transfer.part.sync();
    await inbox.writeSidecar(sidecar);
  })().then(
    () => undefined,
    // undefined stands for success: a rejection without a reason still counts as a failure.
    (error: unknown) => error ?? new Error('the part could not be synced'),
  );
}

export function describeIncoming(transfer: IncomingTransfer): {
  transferId: string;
  from: string;
  name: string;
} {
  return { transferId: transfer.hex, from: transfer.from, name: transfer.name };
}
