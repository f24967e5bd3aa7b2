// The state that keeps the mesh honest across restarts (agent/trust, agent/mesh/{replay-guard,sequence}) and
// the service that spreads revocations and key rotations, on real files in a temporary data_dir: sequence
// numbers never repeat, replay windows survive a restart and an eviction, names stay with their first owner,
// revocations and rotations are checked before they are taken, and a neighbour that forges gets shunned.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { Counters } from '../../../agent/core/counters.js';
import { createLogger } from '../../../agent/core/logger.js';
import { generateIdentity, type Identity } from '../../../agent/identity/identity.js';
import { MemberRegistry } from '../../../agent/identity/member-registry.js';
import { ReplayGuard } from '../../../agent/mesh/replay-guard.js';
import { SEQUENCE_BLOCK, SequenceCounter } from '../../../agent/mesh/sequence.js';
import {
  encodeTrust,
  type KeyRotation,
  keyIdOf,
  rotationSigningBytes,
} from '../../../agent/protocol/trust.js';
import { MESH_KEYS_FILE, MeshKeyRing } from '../../../agent/trust/mesh-key-ring.js';
import { NeighbourBlame } from '../../../agent/trust/neighbour-blame.js';
import { RevocationList, signRevocation } from '../../../agent/trust/revocation-list.js';
import { NotAdminError, TrustService } from '../../../agent/trust/trust-service.js';
import { MAX_PENDING_MEMBER_WRITES, TRUST_STORE_FILE, TrustStore } from '../../../agent/trust/trust-store.js';
import { stopAllAgents, temporaryDir } from '../../support/agent-process.js';

afterAll(stopAllAgents);

const log = createLogger({ level: 'silent' });

function rotation(issuer: Identity, epoch: number, key: Uint8Array, overlapMs = 60_000): KeyRotation {
  const fields = {
    epoch,
    keyId: keyIdOf(key),
    issuerKey: issuer.publicKey,
    issuedAtMs: Date.now(),
    overlapMs,
  };
  return { ...fields, signature: issuer.sign(rotationSigningBytes(fields)) };
}

describe('sequence numbers', () => {
  it('never repeat across restarts: each start begins after the last reservation, reserved before use', async () => {
    const path = join(temporaryDir(), TRUST_STORE_FILE);
    const first = await TrustStore.open(path);
    // A clock at 1970 takes the clock floor out of the way: the reservations alone decide here.
    const counter = new SequenceCounter(first, () => {}, 0);
    const used = Array.from({ length: 10 }, () => counter.next());
    expect(used).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(first.reservedSequence).toBe(SEQUENCE_BLOCK);
    first.close(); // as after a crash: nothing more written than the reservation
    const second = await TrustStore.open(path);
    const again = new SequenceCounter(second, () => {}, 0);
    expect(again.next()).toBe(SEQUENCE_BLOCK);
    expect(second.reservedSequence).toBe(2 * SEQUENCE_BLOCK);
    second.close();
  });

  it('a reservation that cannot be written is reported and the counter carries on', () => {
    const errors: unknown[] = [];
    const counter = new SequenceCounter(
      {
        reservedSequence: 7,
        reserveSequence: () => {
          throw new Error('SQLITE_FULL');
        },
      },
      (error) => errors.push(error),
      0,
    );
    expect([counter.next(), counter.next()]).toEqual([7, 8]);
    expect(errors).toHaveLength(1);
  });

  it('with its reservations lost, starts above every number it used before, by the clock', async () => {
    const store = await TrustStore.open(':memory:');
    const startedAtMs = Date.parse('2026-12-01T00:00:00Z');
    const before = new SequenceCounter(store, () => {}, startedAtMs);
    let last = 0;
    for (let i = 0; i < 100_000; i++) last = before.next();
    store.close();
    // A day later, trust.sqlite gone: a fresh store, and still no number from before.
    const fresh = await TrustStore.open(':memory:');
    const after = new SequenceCounter(fresh, () => {}, startedAtMs + 86_400_000);
    expect(after.next()).toBeGreaterThan(last);
    expect(last).toBeLessThanOrEqual(Number.MAX_SAFE_INTEGER);
    fresh.close();
  });
});

describe('replay windows', () => {
  it('accept each number once, in any order within the window, and refuse what is older', () => {
    const guard = new ReplayGuard(undefined);
    expect(guard.accept('a', 100)).toBe('fresh');
    expect(guard.accept('a', 98)).toBe('fresh');
    expect(guard.accept('a', 100)).toBe('repeat');
    expect(guard.accept('a', 98)).toBe('repeat');
    expect(guard.accept('a', 5_000)).toBe('fresh');
    expect(guard.accept('a', 99)).toBe('stale');
    expect(guard.accept('a', 5_000 - 4_095)).toBe('fresh');
    expect(guard.accept('b', 98)).toBe('fresh'); // windows are per origin
  });

  it('survive a restart: what was accepted before is refused after, what is newer is taken', async () => {
    const path = join(temporaryDir(), TRUST_STORE_FILE);
    const store = await TrustStore.open(path);
    const guard = new ReplayGuard(store);
    for (const seq of [1, 2, 3, 40]) guard.accept('origin', seq);
    guard.flush();
    store.close();
    const reopened = await TrustStore.open(path);
    const after = new ReplayGuard(reopened);
    expect(after.accept('origin', 3)).toBe('repeat');
    expect(after.accept('origin', 40)).toBe('repeat');
    expect(after.accept('origin', 41)).toBe('fresh');
    reopened.close();
  });

  it('are written once a second without an fsync, and durably when a flush asks for it', async () => {
    vi.useFakeTimers();
    try {
      const path = join(temporaryDir(), TRUST_STORE_FILE);
      const store = await TrustStore.open(path);
      const writes: boolean[] = [];
      const guard = new ReplayGuard({
        replayMark: (origin) => store.replayMark(origin),
        saveReplayMarks: (marks, durable) => {
          writes.push(durable);
          store.saveReplayMarks(marks, durable);
        },
      });
      guard.accept('origin', 7);
      vi.advanceTimersByTime(1_000);
      expect(store.replayMark('origin')).toBe(7);
      guard.accept('origin', 8);
      guard.flush(); // before a CALL runs
      expect(writes).toEqual([false, true]);
      store.close();
      const reopened = await TrustStore.open(path);
      expect(reopened.replayMark('origin')).toBe(8);
      reopened.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('an origin crowded out of memory by made-up ones is looked up on disk, not started over', async () => {
    const store = await TrustStore.open(':memory:');
    const guard = new ReplayGuard(store, 16);
    guard.accept('victim', 500);
    for (let index = 0; index < 100; index++) guard.accept(`made-up-${index}`, 1);
    expect(guard.accept('victim', 500)).toBe('repeat');
    expect(guard.accept('victim', 499)).toBe('repeat');
    store.close();
  });
});

describe('names', () => {
  it('belong to the first identity that claims them, across restarts; others are conflicts, once', async () => {
    const path = join(temporaryDir(), TRUST_STORE_FILE);
    const store = await TrustStore.open(path);
    const registry = new MemberRegistry(store);
    expect(registry.claim('aaaaaaaaaaaaaaaa', 'door')).toBe('bound');
    expect(registry.claim('aaaaaaaaaaaaaaaa', 'door')).toBe('held');
    expect(registry.claim('bbbbbbbbbbbbbbbb', 'door')).toBe('conflict');
    expect(registry.isNewConflict('bbbbbbbbbbbbbbbb', 'door')).toBe(true);
    expect(registry.isNewConflict('bbbbbbbbbbbbbbbb', 'door')).toBe(false);
    expect(registry.claimants('door')).toEqual(['aaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbb']);
    store.close();
    const reopened = new MemberRegistry(await TrustStore.open(path));
    expect(reopened.ownerOf('door')).toBe('aaaaaaaaaaaaaaaa');
    expect(reopened.isImpostor('bbbbbbbbbbbbbbbb', 'door')).toBe(true);
    expect(reopened.isKnownMember('aaaaaaaaaaaaaaaa')).toBe(true);
    // The owner revoked: its names are free, and the next claimant takes them.
    for (const name of reopened.namesOwnedBy('aaaaaaaaaaaaaaaa')) reopened.release(name);
    expect(reopened.claim('bbbbbbbbbbbbbbbb', 'door')).toBe('bound');
  });
});

describe('members and names met', () => {
  const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  const ids = (count: number): string[] =>
    Array.from({ length: count }, (_, index) => index.toString(16).padStart(16, '0'));

  it('are committed together at the end of the turn that met them, in the order met', async () => {
    const path = join(temporaryDir(), TRUST_STORE_FILE);
    const store = await TrustStore.open(path);
    // What another process reading the file (or the agent after a power cut) finds there.
    const reader = new Database(path, { readonly: true });
    const onDisk = (): number[] => [
      reader.prepare('SELECT count(*) FROM members').pluck().get() as number,
      reader.prepare('SELECT count(*) FROM names').pluck().get() as number,
    ];
    const registry = new MemberRegistry(store);
    for (const [index, id] of ids(50).entries()) {
      registry.noteMember(id, randomBytes(32));
      registry.claim(id, `peer-${index}`);
    }
    expect(onDisk()).toEqual([0, 0]);
    await nextTurn();
    expect(onDisk()).toEqual([50, 50]);
    // A name bound and freed in one turn ends up free: the release is written after the binding.
    registry.claim('aaaaaaaaaaaaaaaa', 'door');
    registry.release('door');
    await nextTurn();
    expect(reader.prepare("SELECT count(*) FROM names WHERE name = 'door'").pluck().get()).toBe(0);
    reader.close();
    store.close();
  });

  it('wait at most MAX_PENDING_MEMBER_WRITES: the write that reaches it commits them at once', async () => {
    const path = join(temporaryDir(), TRUST_STORE_FILE);
    const store = await TrustStore.open(path);
    const reader = new Database(path, { readonly: true });
    const stored = (): number => reader.prepare('SELECT count(*) FROM members').pluck().get() as number;
    const [last, ...first] = ids(MAX_PENDING_MEMBER_WRITES).reverse();
    for (const id of first) store.saveMember(id, null);
    expect(stored()).toBe(0);
    store.saveMember(last as string, null);
    expect(stored()).toBe(MAX_PENDING_MEMBER_WRITES);
    reader.close();
    store.close();
  });

  it('are written by close() when their turn has not ended yet', async () => {
    const path = join(temporaryDir(), TRUST_STORE_FILE);
    const store = await TrustStore.open(path);
    new MemberRegistry(store).claim('aaaaaaaaaaaaaaaa', 'door');
    store.close();
    const reopened = new MemberRegistry(await TrustStore.open(path));
    expect(reopened.ownerOf('door')).toBe('aaaaaaaaaaaaaaaa');
    expect(reopened.isKnownMember('aaaaaaaaaaaaaaaa')).toBe(true);
  });
});

describe('revocations', () => {
  const admin = generateIdentity();
  const member = generateIdentity();

  it('are taken only when signed by an admin, and their digest does not depend on the order', () => {
    const adminsOnly = (issuer: string): boolean => issuer === admin.peerId;
    const list = new RevocationList(adminsOnly);
    const byAdmin = signRevocation(admin, member.peerId, 'stolen');
    expect(list.add(signRevocation(member, admin.peerId, 'coup'))).toBe('unauthorised');
    expect(list.add({ ...byAdmin, reason: 'altered' })).toBe('bad-signature');
    expect(list.add(byAdmin)).toBe('added');
    expect(list.add(byAdmin)).toBe('known');
    expect(list.has(member.peerId)).toBe(true);
    const other = signRevocation(admin, 'fedcba9876543210', '');
    const [one, two] = [new RevocationList(adminsOnly), new RevocationList(adminsOnly)];
    one.add(byAdmin);
    one.add(other);
    two.add(other);
    two.add(byAdmin);
    expect(Buffer.from(one.digest())).toEqual(Buffer.from(two.digest()));
    expect(Buffer.from(one.digest())).not.toEqual(Buffer.from(list.digest()));
  });
});

describe('who may administer', () => {
  it('is an admin that is not itself revoked: a revoked admin can neither revoke nor rekey any more', () => {
    const [first, second, member] = [generateIdentity(), generateIdentity(), generateIdentity()];
    const list = new RevocationList((peerId) => peerId === first.peerId || peerId === second.peerId);
    expect(list.mayAdminister(first.peerId)).toBe(true);
    expect(list.add(signRevocation(second, first.peerId, 'stolen'))).toBe('added');
    expect(list.mayAdminister(first.peerId)).toBe(false);
    // Its signature is still good; its right is gone, whatever identity it holds when it sends.
    expect(list.add(signRevocation(first, member.peerId, 'revenge'))).toBe('unauthorised');
    expect(list.has(member.peerId)).toBe(false);
  });
});

describe('mesh key ring', () => {
  const admin = generateIdentity();
  const base = randomBytes(32);

  it('takes a later epoch, keeps the old key accepted for the overlap, and keeps it across restarts', async () => {
    const dir = temporaryDir();
    const ring = await MeshKeyRing.load(dir, base);
    expect(ring.current.epoch).toBe(0);
    const key1 = randomBytes(32);
    expect(await ring.adopt(rotation(admin, 1, key1, 60_000), key1, 1_000)).toBe('adopted');
    expect(ring.accepted(1_000)).toEqual([Uint8Array.from(key1), Uint8Array.from(base)]);
    expect(ring.accepted(61_001)).toEqual([Uint8Array.from(key1)]);
    expect(await ring.adopt(rotation(admin, 1, key1), key1)).toBe('held');
    const reloaded = await MeshKeyRing.load(dir, base);
    expect(reloaded.current.epoch).toBe(1);
    expect(Buffer.from(reloaded.current.key)).toEqual(key1);
    expect(reloaded.retiredUntilMs(1_000)).toBe(61_000);
    // The file holds keys: only its owner may read it.
    const mode = (await import('node:fs')).statSync(join(dir, MESH_KEYS_FILE)).mode & 0o777;
    expect(mode).toBe(0o600);
  });

  it('refuses an older epoch; of two rotations to one epoch the smaller key id wins everywhere', async () => {
    const ring = MeshKeyRing.inMemory(base);
    const [key1, key2] = [randomBytes(32), randomBytes(32)];
    const [small, large] = Buffer.compare(keyIdOf(key1), keyIdOf(key2)) < 0 ? [key1, key2] : [key2, key1];
    expect(await ring.adopt(rotation(admin, 2, large), large)).toBe('adopted');
    expect(await ring.adopt(rotation(admin, 1, small), small)).toBe('older');
    expect(await ring.adopt(rotation(admin, 2, small), small)).toBe('adopted');
    expect(await ring.adopt(rotation(admin, 2, large), large)).toBe('older');
    expect(Buffer.from(ring.current.key)).toEqual(small);
  });

  it('starts over at epoch 0 when the config names another mesh key', async () => {
    const dir = temporaryDir();
    const ring = await MeshKeyRing.load(dir, base);
    const key1 = randomBytes(32);
    await ring.adopt(rotation(admin, 1, key1), key1);
    const other = await MeshKeyRing.load(dir, randomBytes(32));
    expect(other.current.epoch).toBe(0);
  });

  it('a key it cannot keep on disk is not taken, and the service counts it instead of throwing', async () => {
    const dir = temporaryDir();
    const ring = await MeshKeyRing.load(dir, base);
    // A directory where the file goes: the write's rename fails, as on a full or read-only disk.
    await mkdir(join(dir, MESH_KEYS_FILE));
    const key1 = randomBytes(32);
    await expect(ring.adopt(rotation(admin, 1, key1), key1)).rejects.toThrow();
    expect(ring.current.epoch).toBe(0);
    expect(ring.accepted()).toEqual([Uint8Array.from(base)]);
  });

  it('a damaged file stops the agent with its path named', async () => {
    const dir = temporaryDir();
    await writeFile(join(dir, MESH_KEYS_FILE), '{"base": 5}');
    await expect(MeshKeyRing.load(dir, base)).rejects.toThrow(MESH_KEYS_FILE);
  });
});

describe('neighbour blame', () => {
  it('shuns a neighbour after shun_after attributable failures within a minute, never for others', () => {
    let nowMs = 0;
    const blame = new NeighbourBlame({ shunAfter: 3, shunForMs: 600_000, log, now: () => nowMs });
    const failure = (neighbour: string, attributable: boolean) =>
      blame.record({ neighbour, source: 'x', reason: 'bad-signature', attributable });
    for (let i = 0; i < 10; i++) expect(failure('honest-relay', false)).toBe(false);
    expect([failure('forger', true), failure('forger', true)]).toEqual([false, false]);
    nowMs += 61_000; // a new minute: the count starts again
    expect([failure('forger', true), failure('forger', true), failure('forger', true)]).toEqual([
      false,
      false,
      true,
    ]);
    expect(blame.isShunned('forger')).toBe(true);
    expect(blame.isShunned('honest-relay')).toBe(false);
    nowMs += 600_001;
    expect(blame.isShunned('forger')).toBe(false);
    const never = new NeighbourBlame({ shunAfter: 0, shunForMs: 1, log });
    for (let i = 0; i < 100; i++)
      never.record({ neighbour: 'n', source: 'x', reason: 'bad-tag', attributable: true });
    expect(never.isShunned('n')).toBe(false);
  });
});

describe('trust service', () => {
  function service(options: { admins?: string[]; identity?: Identity; neighbours?: string[] } = {}) {
    const identity = options.identity ?? generateIdentity();
    const sent: { peer: string; payload: Uint8Array }[] = [];
    const broadcasts: Uint8Array[] = [];
    const admins = options.admins ?? [];
    const keyRing = MeshKeyRing.inMemory(new Uint8Array(32).fill(9));
    const members = new MemberRegistry();
    const revocations = new RevocationList((issuer) => admins.length === 0 || admins.includes(issuer));
    const trust = new TrustService({
      identity,
      keyRing,
      revocations,
      members,
      sendToNeighbour: async (peer, payload) => {
        sent.push({ peer, payload });
      },
      broadcast: (payload) => broadcasts.push(payload),
      neighbours: () => options.neighbours ?? ['n1', 'n2'],
      counters: new Counters(),
      log,
    });
    const revoked: string[] = [];
    trust.on('revoked', (peer) => revoked.push(peer));
    return { trust, identity, sent, broadcasts, keyRing, members, revocations, revoked };
  }

  it('an agent not in [security] admins may neither revoke nor rekey', async () => {
    const { trust } = service({ admins: ['0000000000000000'] });
    expect(() => trust.revoke('1111111111111111', '')).toThrow(NotAdminError);
    await expect(trust.rekey(1_000)).rejects.toThrow(NotAdminError);
  });

  it('revoke floods the revocation and hands it to every neighbour; the names of the revoked are freed', () => {
    const { trust, sent, broadcasts, members, revoked } = service();
    members.claim('2222222222222222', 'shed-pi');
    trust.revoke('2222222222222222', 'lost');
    expect(revoked).toEqual(['2222222222222222']);
    expect(broadcasts).toHaveLength(1);
    expect(sent.map((s) => s.peer)).toEqual(['n1', 'n2']);
    expect(members.ownerOf('shed-pi')).toBeUndefined();
  });

  it('a rekey is handed to every neighbour; a key update through the mesh is refused, over a link taken', async () => {
    const admin = service();
    const result = await admin.trust.rekey(60_000);
    expect(result.epoch).toBe(1);
    expect(admin.sent.map((s) => s.peer)).toEqual(['n1', 'n2']);
    const update = admin.sent[0]?.payload as Uint8Array;

    const member = service({ admins: [admin.identity.peerId] });
    await member.trust.handle('n9', update, false);
    expect(member.keyRing.current.epoch).toBe(0);
    await member.trust.handle('n1', update, true);
    expect(member.keyRing.current.epoch).toBe(1);
    expect(member.keyRing.accepted()).toHaveLength(2);
    // It passes the key on, but not back to the neighbour it came from.
    expect(member.sent.map((s) => s.peer)).toEqual(['n2']);
  });

  it('refuses a key update from someone not allowed, or whose key does not match its record', async () => {
    const admin = generateIdentity();
    const member = service({ admins: [admin.peerId] });
    const key = randomBytes(32);
    const byStranger = encodeTrust({
      kind: 'key-update',
      rotation: rotation(generateIdentity(), 1, key),
      key,
    });
    await member.trust.handle('n1', byStranger, true);
    const swapped = encodeTrust({
      kind: 'key-update',
      rotation: rotation(admin, 1, key),
      key: randomBytes(32),
    });
    await member.trust.handle('n1', swapped, true);
    expect(member.keyRing.current.epoch).toBe(0);
  });

  it('a direct neighbour announcing an older key epoch or another revocation list is sent ours', async () => {
    // Rotated and revoked while it had no neighbours: nothing went out then.
    const { trust, sent, revocations } = service({ neighbours: [] });
    await trust.rekey(60_000);
    trust.revoke('3333333333333333', '');
    expect(sent).toEqual([]);
    const announcement = {
      initialTtl: 4,
      name: 'n1',
      groups: [],
      neighbours: [],
      capabilities: { actions: [], sensors: [] },
      keyEpoch: 0,
      revocationDigest: new Uint8Array(8),
    };
    // Not from a direct neighbour (relayed): nothing.
    trust.onAnnouncement('n3', announcement, 'n1');
    expect(sent).toEqual([]);
    trust.onAnnouncement('n1', announcement, 'n1');
    // [kind, ...]: 31 KEY-UPDATE, 30 REVOCATIONS (the kind is the byte after the array head and 0x18).
    expect(sent.map((s) => s.payload[2])).toEqual([31, 30]);
    // The same again at once: paced, not sent again.
    trust.onAnnouncement('n1', announcement, 'n1');
    expect(sent).toHaveLength(2);
    // A neighbour up to date gets nothing.
    trust.onAnnouncement(
      'n2',
      { ...announcement, keyEpoch: 1, revocationDigest: revocations.digest() },
      'n2',
    );
    expect(sent).toHaveLength(2);
  });
});

it('the trust store file is created with mode 0600', async () => {
  const dir = temporaryDir();
  const store = await TrustStore.open(join(dir, TRUST_STORE_FILE));
  store.reserveSequence(1);
  store.close();
  const { statSync } = await import('node:fs');
  expect(statSync(join(dir, TRUST_STORE_FILE)).mode & 0o777).toBe(0o600);
  expect((await readFile(join(dir, TRUST_STORE_FILE))).subarray(0, 15).toString()).toBe('SQLite format 3');
});
