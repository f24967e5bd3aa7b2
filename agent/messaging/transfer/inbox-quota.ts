// How much of the inbox one peer may take, so that one member cannot fill the disk for everyone. What a peer
// has there is the files it pushed that are still there plus its parts (transfers in progress or parked for
// a resume), each part counted at its whole offered size: what it will take once complete. An offer fits
// when that plus the offered file stays within the peer's bytes and files, and the inbox's own file bound.
import type { InboxShare } from './inbox-senders.js';

export interface InboxQuota {
  /** Bytes one peer may have in the inbox, the offered file included. */
  maxBytesPerPeer: number;
  /** Files one peer may have in the inbox, parts and the offered file included. */
  maxFilesPerPeer: number;
  /** Files from every peer the inbox may hold, parts and the offered file included. */
  maxInboxFiles: number;
}

/** A part in the inbox: whose it is and how large its file will be. */
export interface PartShare {
  from: string;
  size: number;
}

/** Why an offer does not fit: over its peer's share, or the inbox holds as many files as it may. */
export interface QuotaRefusal {
  cause: 'peer-quota' | 'inbox-full';
  message: string;
}

/**
 * Why `peer`'s offer of `size` bytes does not fit, or undefined when it does. `files` is what the peer's
 * finished files take, `inboxFiles` how many finished files the inbox holds from everyone, and `parts` every
 * part in the inbox but the offered transfer's own (a resume is counted once, as the offer).
 */
export function quotaRefusal(
  quota: InboxQuota,
  peer: string,
  size: number,
  files: InboxShare,
  inboxFiles: number,
  parts: Iterable<PartShare>,
): QuotaRefusal | undefined {
  const held = { ...files };
  let allParts = 0;
  for (const part of parts) {
    allParts += 1;
    if (part.from !== peer) continue;
    held.files += 1;
    held.bytes += part.size;
  }
  if (held.bytes + size > quota.maxBytesPerPeer) {
    return {
      cause: 'peer-quota',
      message:
        `peer quota: ${held.bytes} bytes from you are in the inbox already (${held.files} files and parts); ` +
        `with these ${size} bytes that exceeds the ${quota.maxBytesPerPeer} bytes one peer may have there`,
    };
  }
  if (held.files + 1 > quota.maxFilesPerPeer) {
    return {
      cause: 'peer-quota',
      message: `peer quota: ${held.files} files and parts from you are in the inbox already, the most one peer may have there`,
    };
  }
  if (inboxFiles + allParts + 1 > quota.maxInboxFiles) {
    return {
      cause: 'inbox-full',
      message: `the inbox holds ${inboxFiles + allParts} received files and parts, as many as it may`,
    };
  }
  return undefined;
}
