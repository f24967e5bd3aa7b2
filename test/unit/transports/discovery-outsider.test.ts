// "Silence for outsiders" in what one device broadcasts across rotations: its BLE advertisements and its mDNS
// records share nothing beyond the constant product marker, contain no 3 bytes of its peer id, and open under
// no foreign key; a member opens every one of them to its peer id. (The device's name is not an input to
// either encoder, so there is nothing to check it against.)
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BLE_HINT_LAYOUT, encodeAdvertisement } from '../../../transports/ble/advertisement.js';
import { formatAddress, randomPrivateAddress } from '../../../transports/ble/private-address.js';
import { openHint, sealHint } from '../../../transports/discovery-hint.js';
import {
  announcementFor,
  MDNS_HINT_LAYOUT,
  randomInstanceName,
  readAnnouncedService,
} from '../../../transports/wifi/mdns-resolver.js';

const ROTATIONS = 24;
const PEER_ID = '56475aa75463474c';
const MESH_KEY = new Uint8Array(32).fill(0x42);
const FOREIGN_KEYS = Array.from({ length: 8 }, (_, i) => new Uint8Array(32).fill(i));
/** Constant across rotations: Flags, the service UUID AD, the manufacturer AD header and the version/flags byte. */
const ADVERTISING_PREFIX_BYTES = 26;
/** The service data AD header and UUID. */
const SCAN_RESPONSE_PREFIX_BYTES = 18;

/** Nonces as a rotation draws them, but fixed so that a chance 3-byte coincidence cannot make this test flaky. */
const nonce = (rotation: number, bytes: number): Uint8Array =>
  Uint8Array.from(createHash('sha256').update(`rotation ${rotation}`).digest().subarray(0, bytes));

const peerIdWindows = (): Buffer[] => {
  const id = Buffer.from(PEER_ID, 'hex');
  return Array.from({ length: id.length - 2 }, (_, i) => id.subarray(i, i + 3));
};

function expectNothingIdentifying(bytes: Uint8Array): void {
  const buffer = Buffer.from(bytes);
  expect(buffer.toString('latin1').toLowerCase()).not.toContain(PEER_ID.slice(0, 6));
  for (const window of peerIdWindows()) expect(buffer.includes(window)).toBe(false);
}

/** Whether a and b have any run of `length` equal bytes in common, at any offsets. */
function shareRun(a: Uint8Array, b: Uint8Array, length: number): boolean {
  const other = Buffer.from(b);
  for (let i = 0; i + length <= a.length; i++) {
    if (other.includes(Buffer.from(a.subarray(i, i + length)))) return true;
  }
  return false;
}

describe('what an outsider hears over BLE across rotations', () => {
  const rotations = Array.from({ length: ROTATIONS }, (_, rotation) => {
    const hint = sealHint(() => [MESH_KEY], PEER_ID, BLE_HINT_LAYOUT, nonce(rotation, 6));
    return {
      ...encodeAdvertisement({ hint, isWifiAvailable: true, isAcceptingLinks: true }),
      hint,
      address: randomPrivateAddress(),
    };
  });

  it('shares nothing beyond the constant prefix between any two rotations', () => {
    const first = rotations[0];
    if (first === undefined) throw new Error('no rotations');
    for (const { advertisingData, scanResponse } of rotations) {
      expect(advertisingData.subarray(0, ADVERTISING_PREFIX_BYTES)).toEqual(
        first.advertisingData.subarray(0, ADVERTISING_PREFIX_BYTES),
      );
      expect(scanResponse.subarray(0, SCAN_RESPONSE_PREFIX_BYTES)).toEqual(
        first.scanResponse.subarray(0, SCAN_RESPONSE_PREFIX_BYTES),
      );
    }
    const variable = rotations.map(({ hint }) => hint);
    for (let i = 0; i < variable.length; i++) {
      for (let j = i + 1; j < variable.length; j++) {
        expect(
          shareRun(variable[i] as Uint8Array, variable[j] as Uint8Array, 3),
          `rotations ${i} and ${j}`,
        ).toBe(false);
      }
    }
    expect(new Set(rotations.map(({ address }) => formatAddress(address))).size).toBe(ROTATIONS);
  });

  it('contains no 3 bytes of the peer id, and opens under no foreign key', () => {
    for (const { advertisingData, scanResponse, hint } of rotations) {
      expectNothingIdentifying(Buffer.concat([advertisingData, scanResponse]));
      expect(openHint(() => FOREIGN_KEYS, hint, BLE_HINT_LAYOUT)).toBeUndefined();
    }
  });

  it('opens to the peer id for a member, every rotation', () => {
    for (const { hint } of rotations) {
      expect(openHint(() => [MESH_KEY], hint, BLE_HINT_LAYOUT)?.peerId).toBe(PEER_ID);
    }
  });
});

describe('what an outsider reads in mDNS across rotations', () => {
  const records = Array.from({ length: ROTATIONS }, (_, rotation) =>
    announcementFor(
      randomInstanceName(),
      { peerId: PEER_ID, meshKeys: () => [MESH_KEY], port: 7450 },
      nonce(rotation, 16),
    ),
  );
  const texts = (record: (typeof records)[number]): string[] => [
    record.name,
    record.host,
    `v=${record.txt.v}`,
    `h=${record.txt.h}`,
  ];

  it('names only a random instance, new at each rotation, with the same 8 hex in the host name', () => {
    for (const record of records) {
      expect(record.name).toMatch(/^nearmesh-[0-9a-f]{8}$/);
      expect(record.host).toBe(`${record.name}.local`);
      expect(Object.keys(record.txt).sort()).toEqual(['h', 'v']);
    }
    expect(new Set(records.map((record) => record.name)).size).toBe(ROTATIONS);
    const hints = records.map((record) => Buffer.from(record.txt.h, 'hex'));
    for (let i = 0; i < hints.length; i++) {
      for (let j = i + 1; j < hints.length; j++) {
        expect(shareRun(hints[i] as Buffer, hints[j] as Buffer, 3), `rotations ${i} and ${j}`).toBe(false);
      }
    }
  });

  it('contains no part of the peer id (as text or bytes), and opens under no foreign key', () => {
    for (const record of records) {
      for (const text of texts(record)) expect(text).not.toContain(PEER_ID.slice(0, 6));
      expectNothingIdentifying(Buffer.from(record.txt.h, 'hex'));
      const service = { ...record, addresses: ['10.0.0.9'] };
      expect(readAnnouncedService(service, '0000000000000000', () => FOREIGN_KEYS)).toEqual({
        kind: 'foreign',
      });
    }
  });

  it('opens to the peer id for a member, every rotation', () => {
    for (const record of records) {
      const reading = readAnnouncedService({ ...record, addresses: ['10.0.0.9'] }, '0000000000000000', () => [
        MESH_KEY,
      ]);
      expect(reading.kind === 'peer' && reading.candidates[0]?.peerId).toBe(PEER_ID);
      expect(openHint(() => [MESH_KEY], Buffer.from(record.txt.h, 'hex'), MDNS_HINT_LAYOUT)?.peerId).toBe(
        PEER_ID,
      );
    }
  });
});
