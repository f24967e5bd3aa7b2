// How the mDNS resolver reads other agents' announcements (untrusted LAN input) and names itself.
// The resolver's network side runs only in namespaces: see test/system/mdns-resolver.test.ts.
import { describe, expect, it } from 'vitest';
import { sealHint } from '../../../../transports/discovery-hint.js';
import {
  type AnnouncedService,
  MDNS_HINT_LAYOUT,
  MdnsResolver,
  randomInstanceName,
  readAnnouncedService,
} from '../../../../transports/wifi/mdns-resolver.js';

const SELF = '0123456789abcdef';
const PEER = 'fedcba9876543210';
const MESH_KEY = new Uint8Array(32).fill(3);
const OLDER_KEY = new Uint8Array(32).fill(4);
const meshKeys = () => [MESH_KEY, OLDER_KEY];
const hintOf = (peerId: string, key = MESH_KEY): string =>
  Buffer.from(sealHint(() => [key], peerId, MDNS_HINT_LAYOUT)).toString('hex');

function announced(overrides: Partial<AnnouncedService> = {}): AnnouncedService {
  return {
    name: 'nearmesh-3f9a01bc',
    fqdn: 'nearmesh-3f9a01bc._nearmesh._tcp.local',
    port: 7450,
    txt: { v: '2', h: hintOf(PEER) },
    addresses: ['10.0.0.9', 'fe80::1', 'fd00::9'],
    referer: { address: '10.0.0.2' },
    ...overrides,
  };
}

const read = (service: AnnouncedService) => readAnnouncedService(service, SELF, meshKeys);

describe('readAnnouncedService', () => {
  it('opens the hint to the peer id and makes one candidate per IPv4 address, the packet source first', () => {
    expect(read(announced())).toEqual({
      kind: 'peer',
      candidates: [
        { medium: 'wifi', address: '10.0.0.2:7450', peerId: PEER, source: 'mdns' },
        { medium: 'wifi', address: '10.0.0.9:7450', peerId: PEER, source: 'mdns' },
      ],
    });
  });

  it('opens hints sealed under an older key still accepted', () => {
    const reading = read(announced({ txt: { v: '2', h: hintOf(PEER, OLDER_KEY) } }));
    expect(reading.kind === 'peer' && reading.candidates[0]?.peerId).toBe(PEER);
  });

  it('does not repeat an address announced and also seen as the source', () => {
    const reading = read(announced({ addresses: ['10.0.0.2'] }));
    expect(reading.kind === 'peer' && reading.candidates.map((c) => c.address)).toEqual(['10.0.0.2:7450']);
  });

  it('falls back to global IPv6, never link-local', () => {
    const reading = read(announced({ addresses: ['fe80::1', 'fd00::9'], referer: undefined }));
    expect(reading.kind === 'peer' && reading.candidates.map((c) => c.address)).toEqual(['[fd00::9]:7450']);
    expect(read(announced({ addresses: ['fe80::1'], referer: undefined })).kind).toBe('malformed');
  });

  it('recognises our own announcement by its hint, whatever its name', () => {
    expect(read(announced({ txt: { v: '2', h: hintOf(SELF) } }))).toEqual({ kind: 'self' });
  });

  it('tells an agent of another mesh (its hint does not open) from a malformed record', () => {
    const foreign = new Uint8Array(32).fill(5);
    expect(read(announced({ txt: { v: '2', h: hintOf(PEER, foreign) } }))).toEqual({ kind: 'foreign' });
  });

  it('recognises a protocol version 1 agent and where it is', () => {
    const v1 = announced({ name: `kitchen-${PEER.slice(0, 8)}`, txt: { id: PEER, v: '1' } });
    expect(read(v1)).toEqual({ kind: 'older', version: 1, address: '10.0.0.2' });
  });

  it('ignores records with a bad hint, version, port or no TXT at all', () => {
    for (const txt of [
      { v: '2', h: hintOf(PEER).toUpperCase() },
      { v: '2', h: hintOf(PEER).slice(1) },
      { v: '2', h: 'zz' },
      { v: '2' },
      { v: '3', h: hintOf(PEER) },
      { h: hintOf(PEER) },
      undefined,
      'v=2',
      null,
    ]) {
      expect(read(announced({ txt })).kind, JSON.stringify(txt)).toBe('malformed');
    }
    // A hint of the wrong length opens to nothing: not ours.
    expect(read(announced({ txt: { v: '2', h: hintOf(PEER).slice(2) } })).kind).toBe('foreign');
    for (const port of [0, 65536, '7450', 1.5, undefined]) {
      expect(read(announced({ port })).kind).toBe('malformed');
    }
    expect(read(announced({ addresses: 'x', referer: { address: 5 } })).kind).toBe('malformed');
  });
});

describe('randomInstanceName', () => {
  it('is "nearmesh-" and 8 random hex characters, a new one every time', () => {
    const names = Array.from({ length: 100 }, () => randomInstanceName());
    for (const name of names) expect(name).toMatch(/^nearmesh-[0-9a-f]{8}$/);
    expect(new Set(names).size).toBe(100);
  });
});

describe('MdnsResolver options', () => {
  it('refuses a bad peer id, port or interface address', () => {
    const base = { peerId: SELF, meshKeys, port: 1 };
    expect(() => new MdnsResolver({ ...base, peerId: 'nope' })).toThrow(RangeError);
    expect(() => new MdnsResolver({ ...base, port: 0 })).toThrow(RangeError);
    expect(() => new MdnsResolver({ ...base, interfaceAddress: 'eth0' })).toThrow(RangeError);
    expect(new MdnsResolver(base).instanceName).toMatch(/^nearmesh-[0-9a-f]{8}$/);
  });
});
