// BLE controller specs: "hciN" (a kernel HCI device) or "uart:/path[@baud]" (an HCI controller on a serial
// port, which is also how tests reach the btvirt emulator through a pty). Parsed once here for the config.

export type BleAdapter =
  | { readonly kind: 'hci'; readonly index: number }
  | { readonly kind: 'uart'; readonly path: string; readonly baudRate?: number };

export type BleAdapterCheck =
  | { readonly ok: true; readonly value: BleAdapter }
  | { readonly ok: false; readonly expected: string };

const EXPECTED = 'expected "hciN" or "uart:/path[@baud]"';

export function checkBleAdapter(text: string): BleAdapterCheck {
  const hci = /^hci(\d{1,4})$/.exec(text);
  if (hci !== null) return { ok: true, value: { kind: 'hci', index: Number(hci[1]) } };
  if (!text.startsWith('uart:')) return { ok: false, expected: EXPECTED };
  // The baud suffix is only taken when it is all digits, so a path that happens to contain "@" still works.
  const uart = /^uart:(\/.*?)(?:@(\d+))?$/.exec(text);
  const path = uart?.[1];
  if (uart === null || path === undefined || path === '/' || path.includes('\0')) {
    return {
      ok: false,
      expected: 'expected an absolute device path after "uart:", like "uart:/dev/ttyAMA0@1000000"',
    };
  }
  if (uart[2] === undefined) return { ok: true, value: { kind: 'uart', path } };
  const baudRate = Number(uart[2]);
  if (!(baudRate > 0 && Number.isSafeInteger(baudRate)))
    return { ok: false, expected: 'expected a positive baud rate after "@"' };
  return { ok: true, value: { kind: 'uart', path, baudRate } };
}

/** Back to the config spelling, for logs and status output. */
export function formatBleAdapter(adapter: BleAdapter): string {
  if (adapter.kind === 'hci') return `hci${adapter.index}`;
  return adapter.baudRate === undefined ? `uart:${adapter.path}` : `uart:${adapter.path}@${adapter.baudRate}`;
}
