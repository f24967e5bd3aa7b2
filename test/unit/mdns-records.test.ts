// How the mDNS resolver reads other agents' announcements (untrusted LAN input) and names itself.
// The resolver's network side runs only in namespaces: see test/system/mdns-resolver.test.ts.
import { describe, expect, it } from 'vitest';
import {
  type AnnouncedService,
  instanceNameFor,
  MdnsResolver,
  readAnnouncedService,
} from '../../transports/wifi/mdns-resolver.js';

const SELF = '0123456789abcdef';
const PEER = 'fedcba9876543210';

function announced(overrides: Partial<AnnouncedService> = {}): AnnouncedService {
  return {
    name: `kitchen-${PEER.slice(0, 8)}`,
    fqdn: `kitchen-${PEER.slice(0, 8)}._nearmesh._tcp.local`,
    port: 7450,
    txt: { id: PEER, v: '1' },
    addresses: ['10.0.0.9', 'fe80::1', 'fd00::9'],
    referer: { address: '10.0.0.2' },
    ...overrides,
  };
}

describe('readAnnouncedService', () => {
  it('makes one candidate per IPv4 address, the packet source first', () => {
    expect(readAnnouncedService(announced(), SELF)).toEqual({
      kind: 'peer',
      candidates: [
        { medium: 'wifi', address: '10.0.0.2:7450', peerId: PEER, name: 'kitchen', source: 'mdns' },
        { medium: 'wifi', address: '10.0.0.9:7450', peerId: PEER, name: 'kitchen', source: 'mdns' },
      ],
    });
  });

  it('does not repeat an address announced and also seen as the source', () => {
    const reading = readAnnouncedService(announced({ addresses: ['10.0.0.2'] }), SELF);
    expect(reading.kind === 'peer' && reading.candidates.map((c) => c.address)).toEqual(['10.0.0.2:7450']);
  });

  it('falls back to global IPv6, never link-local', () => {
    const reading = readAnnouncedService(
      announced({ addresses: ['fe80::1', 'fd00::9'], referer: undefined }),
      SELF,
    );
    expect(reading.kind === 'peer' && reading.candidates.map((c) => c.address)).toEqual(['[fd00::9]:7450']);
    const none = readAnnouncedService(announced({ addresses: ['fe80::1'], referer: undefined }), SELF);
    expect(none.kind).toBe('malformed');
  });

  it('recognises our own announcement', () => {
    expect(readAnnouncedService(announced({ txt: { id: SELF, v: '1' } }), SELF)).toEqual({ kind: 'self' });
  });

  it('ignores records with a bad id, version, port or no TXT at all', () => {
    for (const txt of [
      { id: 'FEDCBA9876543210', v: '1' },
      { id: PEER.slice(1), v: '1' },
      { id: PEER, v: '2' },
      { id: PEER },
      { v: '1' },
      undefined,
      'id=x',
      null,
    ]) {
      expect(readAnnouncedService(announced({ txt }), SELF).kind, JSON.stringify(txt)).toBe('malformed');
    }
    for (const port of [0, 65536, '7450', 1.5, undefined]) {
      expect(readAnnouncedService(announced({ port }), SELF).kind).toBe('malformed');
    }
    expect(readAnnouncedService(announced({ addresses: 'x', referer: { address: 5 } }), SELF).kind).toBe(
      'malformed',
    );
  });

  it('keeps the whole instance name when it lacks the id suffix', () => {
    const reading = readAnnouncedService(announced({ name: 'odd' }), SELF);
    expect(reading.kind === 'peer' && reading.candidates[0]?.name).toBe('odd');
  });
});

describe('instanceNameFor', () => {
  it('is the agent name plus the first 8 hex of the peer id', () => {
    expect(instanceNameFor('hall light', SELF)).toBe('hall light-01234567');
  });

  it('replaces dots and fits one 63-byte DNS label', () => {
    expect(instanceNameFor('a.b', SELF)).toBe('a-b-01234567');
    const long = instanceNameFor('é'.repeat(100), SELF);
    expect(Buffer.byteLength(long)).toBeLessThanOrEqual(63);
    expect(long.endsWith('-01234567')).toBe(true);
    expect(instanceNameFor('  ', SELF)).toBe('nearmesh-01234567');
  });
});

describe('MdnsResolver options', () => {
  it('refuses a bad peer id, port or interface address', () => {
    expect(() => new MdnsResolver({ peerId: 'nope', name: 'a', port: 1 })).toThrow(RangeError);
    expect(() => new MdnsResolver({ peerId: SELF, name: 'a', port: 0 })).toThrow(RangeError);
    expect(() => new MdnsResolver({ peerId: SELF, name: 'a', port: 1, interfaceAddress: 'eth0' })).toThrow(
      RangeError,
    );
    expect(new MdnsResolver({ peerId: SELF, name: 'a', port: 1 }).instanceName).toBe('a-01234567');
  });
});
