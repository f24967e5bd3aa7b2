// Everything an agent keeps to hold the mesh to account, opened in one place at start: the trust store on
// disk, the keys of the members it has met, who owns which name, the mesh keys, the revocations, and the
// sealing, numbering and replay checks of routed messages. The agent wires these to the layers that use
// them (router, links, messenger); this module only builds and loads them.
import { join } from 'node:path';
import type { Counters } from '../core/counters.js';
import type { Logger } from '../core/logger.js';
import type { Identity } from '../identity/identity.js';
import { DEFAULT_KEY_DIRECTORY_CAPACITY, KeyDirectory } from '../identity/key-directory.js';
import { MemberRegistry } from '../identity/member-registry.js';
import { DEFAULT_REPLAY_ORIGINS, ReplayGuard } from '../mesh/replay-guard.js';
import type { RouterTrust } from '../mesh/router.js';
import { SequenceCounter } from '../mesh/sequence.js';
import { DecodeError } from '../protocol/errors.js';
import { decodeRevocation, encodeRevocation } from '../protocol/trust.js';
import { OriginAuth } from '../security/origin-auth.js';
import { MeshKeyRing } from '../trust/mesh-key-ring.js';
import { NeighbourBlame } from '../trust/neighbour-blame.js';
import { RevocationList } from '../trust/revocation-list.js';
import { TRUST_STORE_FILE, TrustStore } from '../trust/trust-store.js';

export interface TrustState {
  readonly store: TrustStore;
  readonly keys: KeyDirectory;
  readonly members: MemberRegistry;
  readonly keyRing: MeshKeyRing;
  readonly revocations: RevocationList;
  readonly origin: OriginAuth;
  readonly replay: ReplayGuard;
  readonly sequence: SequenceCounter;
  readonly blame: NeighbourBlame;
}

export interface TrustStateOptions {
  dataDir: string;
  identity: Identity;
  /** Epoch 0 of the mesh key: the config's mesh_key or data_dir/mesh.key. */
  baseMeshKey: Uint8Array;
  /** Who may revoke and rekey now (the config's list, or the one a join handed over); empty: every member. */
  admins: () => readonly string[];
  security: { shunAfter: number; shunForMs: number };
  counters: Counters;
  log: Logger;
}

/** Opens the trust store (data_dir/trust.sqlite) and the mesh keys, and builds what uses them. */
export async function openTrustState(options: TrustStateOptions): Promise<TrustState> {
  const { dataDir, identity, security, admins, counters, log } = options;
  const onStoreError = (error: unknown): void => {
    counters.increment('trust.store_errors');
    log.error({ err: error }, 'trust store: cannot write (full disk?); carrying on in memory');
  };
  const store = await TrustStore.open(join(dataDir, TRUST_STORE_FILE), { onWriteError: onStoreError });
  const storedMembers = store.members(); // first met first
  const members = new MemberRegistry({
    nameBindings: () => store.nameBindings(),
    // Queued for the end of the turn: a failed commit goes to onWriteError (above).
    bindName: (name, id) => store.bindName(name, id),
    unbindName: (name) => guarded(() => store.unbindName(name), onStoreError) ?? false,
    members: () => storedMembers,
    saveMember: (id, publicKey) => store.saveMember(id, publicKey),
  });
  const keys = new KeyDirectory(DEFAULT_KEY_DIRECTORY_CAPACITY, (id, publicKey) =>
    members.noteMember(id, publicKey),
  );
  // Most recently met first, should the directory fill before the store runs out.
  for (const member of [...storedMembers].reverse())
    if (member.publicKey !== null) keys.restore(member.publicKey);
  const revocations = new RevocationList(
    (issuer) => admins().length === 0 || admins().includes(issuer),
    (revocation) =>
      guarded(() => store.addRevocation(revocation.revoked, encodeRevocation(revocation)), onStoreError),
  );
  revocations.restore(
    store.revocations().flatMap((bytes) => {
      const revocation = decodeRevocation(bytes);
      return revocation instanceof DecodeError ? [] : [revocation];
    }),
  );
  return {
    store,
    keys,
    members,
    keyRing: await MeshKeyRing.load(dataDir, options.baseMeshKey),
    revocations,
    origin: new OriginAuth(identity, keys),
    replay: new ReplayGuard(store, DEFAULT_REPLAY_ORIGINS, onStoreError),
    sequence: new SequenceCounter(store, onStoreError),
    blame: new NeighbourBlame({ shunAfter: security.shunAfter, shunForMs: security.shunForMs, log }),
  };
}

/** What the router needs of the trust state. */
export function routerTrust(state: TrustState): RouterTrust {
  return {
    origin: state.origin,
    replay: state.replay,
    sequence: state.sequence,
    // A shunned neighbour is refused like a revoked identity, for as long as it is shunned.
    isRevoked: (peerId) => state.revocations.has(peerId) || state.blame.isShunned(peerId),
    keyEpoch: () => state.keyRing.current.epoch,
    revocationDigest: () => state.revocations.digest(),
  };
}

/** Runs a store write; a failure is reported, not thrown (the mesh goes on in memory). */
function guarded<T>(write: () => T, onError: (error: unknown) => void): T | undefined {
  try {
    return write();
  } catch (error) {
    onError(error);
    return undefined;
  }
}
