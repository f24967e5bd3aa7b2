// A rogue member of the mesh for the trust system test. It holds the mesh key and a fresh identity of its
// own, so agents link to it like to any peer (TCP, Noise handshake), and it relays routed traffic between
// them: all of it, or (a lying relay) announcements only, swallowing DATA and ACKs. It keeps what it
// relayed, and on command forges routed messages (another agent's id as source, with tags and signatures
// that cannot be right), sends copies of what it relayed again, and announces itself under any name from
// then on (as an impostor would).
// Built on the project's codec and OriginAuth from dist/ (npm test builds first).
// Usage: node rogue-member.mjs <listen host:port> <mesh key (base64url)> <name>
// Commands: one JSON object a line on stdin, {id, op, ...} (see `operations` below); each is answered by
// {id, ok: true, result} or {id, ok: false, error}, and links coming and going are told as
// {event: "linked" | "closed", peer, ...}, one JSON object a line on stdout.
import { createHmac, randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { checkMeshKey } from '../../../dist/agent/config/mesh-key.js';
import { checkHostPort } from '../../../dist/agent/core/host-port.js';
import { generateIdentity } from '../../../dist/agent/identity/identity.js';
import { KeyDirectory } from '../../../dist/agent/identity/key-directory.js';
import { BROADCAST_ID } from '../../../dist/agent/mesh/address.js';
import {
  announceMessage,
  decodeMessage,
  encodeMessage,
  ORIGIN_TAG_BYTES,
} from '../../../dist/agent/protocol/index.js';
import { originAuthInput } from '../../../dist/agent/protocol/origin.js';
import { OriginAuth, pairwiseKey } from '../../../dist/agent/security/origin-auth.js';
import { establishSecureLink } from '../../../dist/agent/security/secure-channel.js';
import { RevocationList } from '../../../dist/agent/trust/revocation-list.js';
import { TcpTransport } from '../../../dist/transports/wifi/tcp-transport.js';

const [listenText, meshKeyText, ownName] = process.argv.slice(2);
const listen = checkHostPort(listenText ?? '');
const meshKey = checkMeshKey(meshKeyText ?? '');
if (!listen.ok || !meshKey.ok || ownName === undefined) {
  process.stderr.write('usage: rogue-member.mjs <listen host:port> <mesh key> <name>\n');
  process.exit(2);
}

const TTL = 4;
const ANNOUNCE_EVERY_MS = 10_000;
/** Relayed messages kept for replays; the oldest go first. */
const MAX_RELAYED = 20_000;
/** Sequence numbers of forgeries start far above any real agent's: accepted, one would stale them all. */
let nextForgedId = 2 ** 50;

const identity = generateIdentity();
const selfId = identity.peerId;
const keys = new KeyDirectory();
const origin = new OriginAuth(identity, keys);
const revocationDigest = new RevocationList(() => true).digest();
/** Open links by neighbour peer id. */
const links = new Map();
/** 'all' relays everything; 'announce-only' swallows DATA and ACKs (and still announces itself a relay). */
let relaying = 'all';
/** What this member relayed: { atMs, to, message } (the message as it went out, ttl lowered). */
const relayed = [];
let nextSeq = 1;
/** The name it announces itself under: its own, until told to claim another. */
let announcedName = ownName;
let announceTimer;

const emit = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);
const hex = (bytes) => Buffer.from(bytes).toString('hex');

function sendTo(peer, message) {
  const link = links.get(peer);
  if (link === undefined || !link.isOpen) return false;
  link.send(encodeMessage(message));
  return true;
}

function adopt(secure) {
  const peer = secure.peerId;
  keys.learn(secure.peerPublicKey);
  links.set(peer, secure);
  let closeCode = null;
  secure.on('message', (plaintext) => {
    const result = decodeMessage(plaintext);
    if (result.kind !== 'message') return;
    if (result.message.type === 'close') closeCode = result.message.code;
    else receive(peer, result.message);
  });
  secure.on('close', () => {
    if (links.get(peer) === secure) links.delete(peer);
    emit({ event: 'closed', peer, code: closeCode });
    announceSoon();
  });
  emit({ event: 'linked', peer, name: secure.peerName });
  announceSoon();
}

function receive(from, message) {
  if (message.type === 'ping') {
    sendTo(from, { type: 'pong', id: message.id });
    return;
  }
  const isRouted = message.route !== undefined;
  if (message.type === 'data' && !isRouted) {
    // Link-local (a trust message handed over): acknowledged like an honest peer would.
    if (message.ackRequested) sendTo(from, { type: 'ack', id: message.id });
    return;
  }
  if (!isRouted || message.route.source === selfId) return;
  // Verifying an announcement teaches its origin's key (needed to present it with a bad signature).
  if (message.type === 'announce') origin.verify(message);
  if (message.route.destination === selfId) {
    if (message.type === 'data' && message.ackRequested) {
      const ack = { type: 'ack', id: message.id, route: route(selfId, message.route.source) };
      sendTo(from, { ...ack, auth: origin.seal(ack, false) });
    }
    return;
  }
  const passes = relaying === 'all' || (relaying === 'announce-only' && message.type === 'announce');
  if (!passes || message.route.ttlHops <= 1) return;
  const forwarded = { ...message, route: { ...message.route, ttlHops: message.route.ttlHops - 1 } };
  for (const to of links.keys()) {
    if (to === from || !sendTo(to, forwarded)) continue;
    relayed.push({ atMs: Date.now(), to, message: forwarded });
    if (relayed.length > MAX_RELAYED) relayed.shift();
  }
}

function route(source, destination, ttlHops = TTL) {
  return { ttlHops, source, destination };
}

function announcement(fields = {}) {
  return {
    initialTtl: TTL,
    name: ownName,
    groups: [],
    neighbours: [...links.keys()],
    capabilities: { actions: [], sensors: [] },
    keyEpoch: 0,
    revocationDigest,
    ...fields,
  };
}

/** Floods this member's own announcement, validly signed, under `name`. */
function announce(name = announcedName) {
  const unsealed = announceMessage({
    id: nextSeq++,
    relays: true,
    announcement: announcement({ name }),
    route: route(selfId, BROADCAST_ID),
    auth: new Uint8Array(0),
  });
  const message = { ...unsealed, auth: origin.seal(unsealed, true) };
  for (const to of links.keys()) sendTo(to, message);
  return message.id;
}

function announceSoon() {
  clearTimeout(announceTimer);
  announceTimer = setTimeout(() => {
    announce();
    announceTimer = setInterval(announce, ANNOUNCE_EVERY_MS);
  }, 300);
}

const isForMany = (message) => message.type === 'announce' || message.route.destination === BROADCAST_ID;

/**
 * The auth field under `mode`: 'valid' seals as this member (src must be its own id); the others cannot
 * be right for another src: 'random-tag', 'own-pair-tag' (HMAC under this member's pairwise key with the
 * destination), 'own-signature' (this member's key and signature), 'claimed-key-bad-signature' (the
 * claimed source's real key, 64 random bytes as its signature).
 */
function authFor(message, mode) {
  const { source, destination } = message.route;
  switch (mode) {
    case 'valid':
      return origin.seal(message, isForMany(message));
    case 'random-tag':
      return randomBytes(ORIGIN_TAG_BYTES);
    case 'own-pair-tag': {
      const key = pairwiseKey(identity, destination, knownKey(destination));
      const hmac = createHmac('sha256', key);
      hmac.update(originAuthInput(message));
      return Uint8Array.from(hmac.digest().subarray(0, ORIGIN_TAG_BYTES));
    }
    case 'own-signature':
      return Buffer.concat([identity.publicKey, identity.sign(originAuthInput(message))]);
    case 'claimed-key-bad-signature':
      return Buffer.concat([knownKey(source), randomBytes(64)]);
    default:
      throw new Error(`unknown auth mode ${mode}`);
  }
}

function knownKey(peer) {
  const key = keys.publicKeyOf(peer);
  if (key === undefined) throw new Error(`the key of ${peer} is not known here`);
  return key;
}

/** Builds a routed DATA or ANNOUNCE from its spec, seals it under `auth` and sends it to neighbour `to`. */
function forge({ to, message: spec, auth }) {
  const id = spec.id ?? (spec.src === undefined || spec.src === selfId ? nextSeq++ : nextForgedId++);
  const where = route(spec.src ?? selfId, spec.type === 'announce' ? BROADCAST_ID : spec.dst, spec.ttl);
  const unsealed =
    spec.type === 'announce'
      ? announceMessage({
          id,
          relays: true,
          announcement: announcement(spec.announcement),
          route: where,
          auth: new Uint8Array(0),
        })
      : {
          type: 'data',
          id,
          ackRequested: spec.ackRequested === true,
          payload: Buffer.from(spec.payload ?? '', 'hex'),
          route: where,
          ...(spec.system === true && { system: true }),
        };
  if (!sendTo(to, { ...unsealed, auth: authFor(unsealed, auth) })) throw new Error(`no link to ${to}`);
  return { id };
}

/** What it relayed from `sources` (all when absent), as the test reads it (DATA payloads in hex). */
function relayedFrom({ sources }) {
  return relayed
    .filter(({ message }) => sources === undefined || sources.includes(message.route.source))
    .map(({ atMs, to, message }) => ({
      atMs,
      to,
      type: message.type,
      src: message.route.source,
      dst: message.route.destination,
      id: message.id,
      ...(message.type === 'data' && { system: message.system === true, payload: hex(message.payload) }),
    }));
}

/**
 * Sends again, once each, the announcements and the DATA for the neighbour it went to that it relayed from
 * `sources` at least `olderThanMs` ago (past the duplicate window); answers how many went to each neighbour.
 * Left out: DATA for someone further (its destination, not the neighbour, is the one to drop it) and what
 * the neighbour itself originated.
 */
function replay({ sources, olderThanMs }) {
  const nowMs = Date.now();
  const seen = new Set();
  const sent = {};
  for (const { atMs, to, message } of relayed) {
    const { source, destination } = message.route;
    // Its own messages coming back, an agent drops as such before any replay check.
    if (nowMs - atMs < olderThanMs || !sources.includes(source) || source === to) continue;
    if (message.type === 'ack' || (message.type === 'data' && destination !== to)) continue;
    const key = `${to}/${source}/${message.type}/${message.id}/${hex(message.auth)}`;
    if (seen.has(key) || !sendTo(to, message)) continue;
    seen.add(key);
    sent[to] = (sent[to] ?? 0) + 1;
  }
  return { sent };
}

const operations = {
  info: () => ({ id: selfId, publicKey: hex(identity.publicKey), neighbours: [...links.keys()] }),
  relay: ({ mode }) => {
    if (mode !== 'all' && mode !== 'announce-only') throw new Error(`unknown relay mode ${mode}`);
    relaying = mode;
    return { mode };
  },
  announce: ({ name }) => {
    announcedName = name;
    return { id: announce() };
  },
  forge,
  relayed: relayedFrom,
  replay,
};

const transport = new TcpTransport({ listen: listen.value });
transport.on('link', (link) => {
  establishSecureLink(link, { identity, meshKeys: [meshKey.value], name: ownName }).then(adopt, () => {});
});
await transport.start();

createInterface({ input: process.stdin }).on('line', (line) => {
  let request;
  try {
    request = JSON.parse(line);
    const operation = operations[request.op];
    if (operation === undefined) throw new Error(`unknown op ${request.op}`);
    emit({ id: request.id, ok: true, result: operation(request) });
  } catch (error) {
    emit({ id: request?.id, ok: false, error: error instanceof Error ? error.message : String(error) });
  }
});
process.stdin.on('end', () => {
  void transport.stop().finally(() => process.exit(0));
});
