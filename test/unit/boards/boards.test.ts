// Board profiles and detection: every profile from the model string its firmware writes (NUL-terminated),
// the fallback file, and generic Linux for anything unknown or absent.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkBleAdapter } from '../../../agent/core/ble-adapter.js';
import {
  BOARD_PROFILES,
  type BoardId,
  boardProfile,
  classifyRam,
  detectBoard,
  detectBoardSync,
  GENERIC_LINUX,
  matchBoard,
  normalizeModel,
} from '../../../boards/index.js';
import { fixtureRoots } from '../../support/fixture-root.js';

const fixtureRoot = fixtureRoots('nearmesh-boards-');

const MODELS: [string, BoardId][] = [
  ['Raspberry Pi Zero 2 W Rev 1.0', 'rpi-zero-2-w'],
  ['Raspberry Pi 3 Model B Plus Rev 1.3', 'rpi-3b-plus'],
  ['Raspberry Pi 4 Model B Rev 1.5', 'rpi-4b'],
  ['Raspberry Pi 4 Model B Rev 1.1', 'rpi-4b'],
  ['Raspberry Pi 5 Model B Rev 1.0', 'rpi-5'],
  ['Raspberry Pi Compute Module 4 Rev 1.1', 'rpi-cm4'],
  // Near misses: other boards, not these profiles.
  ['Raspberry Pi Compute Module 4S Rev 1.0', 'generic-linux'],
  ['Raspberry Pi 3 Model B Rev 1.2', 'generic-linux'],
  ['Raspberry Pi 400 Rev 1.0', 'generic-linux'],
  ['Raspberry Pi Zero W Rev 1.1', 'generic-linux'],
  ['Pine64 RockPro64 v2.1', 'generic-linux'],
  ['', 'generic-linux'],
];

describe('board detection', () => {
  it.each(MODELS)('%j from /proc/device-tree/model is %s', async (model, id) => {
    const root = fixtureRoot({ 'proc/device-tree/model': `${model}\0` });
    const detected = await detectBoard(root);
    expect(detected.profile.id).toBe(id);
    expect(detected.model).toBe(model === '' ? null : model);
    expect(detected.source).toBe(model === '' ? null : '/proc/device-tree/model');
    expect(detectBoardSync(root)).toEqual(detected);
  });

  it('falls back to /sys/firmware/devicetree/base/model', async () => {
    const root = fixtureRoot({ 'sys/firmware/devicetree/base/model': 'Raspberry Pi 5 Model B Rev 1.0\0' });
    const detected = await detectBoard(root);
    expect(detected).toMatchObject({
      model: 'Raspberry Pi 5 Model B Rev 1.0',
      source: '/sys/firmware/devicetree/base/model',
    });
    expect(detected.profile.id).toBe('rpi-5');
  });

  it('prefers /proc/device-tree/model, and skips it when empty', async () => {
    const both = fixtureRoot({
      'proc/device-tree/model': 'Raspberry Pi 4 Model B Rev 1.4\0',
      'sys/firmware/devicetree/base/model': 'Raspberry Pi 5 Model B Rev 1.0\0',
    });
    expect((await detectBoard(both)).profile.id).toBe('rpi-4b');
    const emptyFirst = fixtureRoot({
      'proc/device-tree/model': '\0',
      'sys/firmware/devicetree/base/model': 'Raspberry Pi Zero 2 W Rev 1.0\0',
    });
    expect((await detectBoard(emptyFirst)).profile.id).toBe('rpi-zero-2-w');
  });

  it('is generic Linux with no model file at all, or an unreadable one', async () => {
    expect(await detectBoard(fixtureRoot({}))).toEqual({ profile: GENERIC_LINUX, model: null, source: null });
    // A directory where the file should be reads as an error, which is not fatal.
    const odd = fixtureRoot({ 'proc/device-tree/model/x': '' });
    expect((await detectBoard(odd)).profile).toBe(GENERIC_LINUX);
    expect(detectBoardSync(join(odd, 'nonexistent')).profile).toBe(GENERIC_LINUX);
  });

  it('normalizes the NUL terminator and whitespace, keeping the first of NUL-separated strings', () => {
    expect(normalizeModel('Raspberry Pi 4 Model B Rev 1.5\0')).toBe('Raspberry Pi 4 Model B Rev 1.5');
    expect(normalizeModel('  Raspberry Pi 5 Model B Rev 1.0\n')).toBe('Raspberry Pi 5 Model B Rev 1.0');
    expect(normalizeModel('first\0second\0')).toBe('first');
    expect(matchBoard('Raspberry Pi 3 Model B Plus Rev 1.3\0').id).toBe('rpi-3b-plus');
    expect(matchBoard('Raspberry Pi 4 Model B').id).toBe('rpi-4b');
    expect(matchBoard(null)).toBe(GENERIC_LINUX);
  });
});

describe('board profiles', () => {
  it('have unique ids, generic last, and every id resolves', () => {
    const ids = BOARD_PROFILES.map((profile) => profile.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(BOARD_PROFILES.at(-1)).toBe(GENERIC_LINUX);
    for (const id of ids) expect(boardProfile(id).id).toBe(id);
  });

  it('suggest defaults the config accepts', () => {
    for (const profile of BOARD_PROFILES) {
      const { ble, mesh } = profile.defaults;
      expect(checkBleAdapter(ble.peripheral).ok, profile.id).toBe(true);
      expect(checkBleAdapter(ble.central).ok, profile.id).toBe(true);
      // [ble] max_links accepts 1..20; the onboard chips hold a handful.
      expect(ble.maxLinks).toBeGreaterThanOrEqual(1);
      expect(ble.maxLinks).toBeLessThanOrEqual(7);
      expect(mesh.relay).toBe(true);
    }
    expect(boardProfile('rpi-zero-2-w').defaults.ble.maxLinks).toBe(4);
    expect(boardProfile('rpi-3b-plus').defaults.ble.maxLinks).toBe(4);
    for (const id of ['rpi-4b', 'rpi-5', 'rpi-cm4'] as const)
      expect(boardProfile(id).defaults.ble.maxLinks).toBeGreaterThanOrEqual(5);
  });

  it('describe the Pis: hci0, wlan0, coexistence, UART notes', () => {
    for (const profile of BOARD_PROFILES.filter((board) => board.id !== 'generic-linux')) {
      expect(profile.defaults.ble.peripheral).toBe('hci0');
      expect(profile.wifiInterface).toBe('wlan0');
      expect(profile.modelPrefixes.length).toBeGreaterThan(0);
      const coexistence = profile.quirks.find((quirk) => quirk.kind === 'wifi-ble-coexistence');
      expect(coexistence, profile.id).toBeDefined();
      if (coexistence?.kind === 'wifi-ble-coexistence') {
        const duties = Object.values(coexistence.scanDutyWhileWifiBusy);
        for (const duty of duties) expect(duty > 0 && duty < 1).toBe(true);
      }
    }
    for (const id of ['rpi-zero-2-w', 'rpi-3b-plus', 'rpi-4b', 'rpi-cm4'] as const) {
      expect(boardProfile(id).bluetoothUart).toMatchObject({ device: '/dev/ttyAMA0', alias: '/dev/serial1' });
      expect(boardProfile(id).quirks.some((quirk) => quirk.kind === 'bt-uart-overlay')).toBe(true);
    }
    // 2.4 GHz-only Wi-Fi: no 5 GHz duty.
    const zero = boardProfile('rpi-zero-2-w').quirks.find((quirk) => quirk.kind === 'wifi-ble-coexistence');
    expect(zero?.kind === 'wifi-ble-coexistence' && zero.scanDutyWhileWifiBusy['5GHz']).toBe(undefined);
    expect(boardProfile('rpi-zero-2-w').ram.class).toBe('tight');
  });

  it('are plain JSON', () => {
    for (const profile of BOARD_PROFILES) expect(JSON.parse(JSON.stringify(profile))).toEqual(profile);
  });

  it('classify RAM with headroom for what the kernel and GPU keep', () => {
    const mib = 1024 * 1024;
    expect(classifyRam(427 * mib)).toBe('tight'); // a Zero 2 W reports about this much
    expect(classifyRam(906 * mib)).toBe('small');
    expect(classifyRam(1024 * mib)).toBe('small');
    expect(classifyRam(3794 * mib)).toBe('ample');
  });
});
