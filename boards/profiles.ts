// Board profiles: what nearmesh knows about each supported board, as plain data. A profile carries
// the defaults a config would want on that board (BLE adapters and link limit, relay), its Wi-Fi
// interface, a RAM class and the radio quirks worth knowing, as structured data rather than prose, so
// the agent, `nearmesh doctor` and docs can all use them. Detection lives in detect.ts.
//
// Everything here is JSON-able (no RegExp, no functions), so a profile can go into `status` as is.

export type BoardId = 'rpi-zero-2-w' | 'rpi-3b-plus' | 'rpi-4b' | 'rpi-5' | 'rpi-cm4' | 'generic-linux';

/**
 * Memory, coarsely, for sizing caches and queues: 'tight' ≤ 512 MiB, 'small' ≤ 1 GiB, 'ample' above.
 * A profile's class is that of its smallest variant (a default must be safe on every variant);
 * classifyRam(os.totalmem()) gives the class of the device actually running.
 */
export type RamClass = 'tight' | 'small' | 'ample';

/** The onboard Bluetooth controller's serial line, for documentation: the kernel owns it as hci0. */
export interface BluetoothUart {
  /** The UART the controller sits on. */
  readonly device: string;
  /** udev's stable alias for it ("/dev/serial1": the secondary UART, the one Bluetooth uses). */
  readonly alias?: string;
  /** Which UART block it is (the PL011 is the full UART; the mini UART's baud follows the core clock). */
  readonly kind: 'pl011' | 'soc';
  readonly note: string;
}

export interface OverlayNote {
  /** dtoverlay / dtparam line for config.txt. */
  readonly line: string;
  readonly effect: string;
}

/** Known radio quirks, each a kind with the data a program can act on and a note for humans. */
export type RadioQuirk =
  | {
      /** Wi-Fi and Bluetooth share one chip and antenna; BLE loses airtime while Wi-Fi is busy. */
      readonly kind: 'wifi-ble-coexistence';
      readonly chip: string;
      /**
       * Recommended BLE scan duty (scan window / scan interval, 0..1) while Wi-Fi carries traffic, by
       * the band the Wi-Fi link is on. 2.4 GHz Wi-Fi competes for the same band as BLE; 5 GHz only for
       * the shared radio and antenna, so it costs less. Absent band = the board has no such Wi-Fi.
       */
      readonly scanDutyWhileWifiBusy: { readonly '2.4GHz': number; readonly '5GHz'?: number };
      readonly note: string;
    }
  | {
      /** Bluetooth occupies a UART that users often want for the GPIO header; overlays move or free it. */
      readonly kind: 'bt-uart-overlay';
      readonly overlays: readonly OverlayNote[];
      readonly note: string;
    }
  | {
      /** Some variants of the board ship without the wireless chip: no hci0, no wlan0. */
      readonly kind: 'optional-wireless';
      readonly note: string;
    }
  | {
      /** The antenna is selectable (onboard or external connector); range depends on the choice. */
      readonly kind: 'antenna-select';
      readonly options: readonly OverlayNote[];
      readonly note: string;
    };

export interface BoardProfile {
  readonly id: BoardId;
  readonly name: string;
  /**
   * Device-tree model prefixes that identify the board ("Raspberry Pi 4 Model B" matches
   * "Raspberry Pi 4 Model B Rev 1.5"). A prefix matches only up to a word end, so
   * "Raspberry Pi Compute Module 4" does not take "Raspberry Pi Compute Module 4S". Empty for generic.
   */
  readonly modelPrefixes: readonly string[];
  /** The onboard Bluetooth chip, or null when there is none or it is not known. */
  readonly bluetoothChip: string | null;
  /** Where the onboard controller is wired; null when none or not a UART nearmesh should care about. */
  readonly bluetoothUart: BluetoothUart | null;
  /** The onboard Wi-Fi interface, or null when not known (generic Linux: wlan0, wlp2s0, ...). */
  readonly wifiInterface: string | null;
  readonly ram: { readonly class: RamClass; readonly variantsMib: readonly number[] };
  /** Config defaults this board suggests, in config spelling (`[ble] peripheral = "hci0"`). */
  readonly defaults: {
    readonly ble: { readonly peripheral: string; readonly central: string; readonly maxLinks: number };
    readonly mesh: { readonly relay: boolean };
  };
  readonly quirks: readonly RadioQuirk[];
}

// Link limits. nearmesh runs both BLE roles (advertising + scanning + connections) on one controller
// by default, and on Pis that controller also shares its radio and antenna with Wi-Fi. None of these
// numbers is a firmware maximum; each is what we expect a controller to hold reliably with room left
// for advertising and scanning, so that an agent at its limit is still discoverable and the mesh can
// route around it. They are defaults: `[ble] max_links` overrides them.
//
// - Zero 2 W, 3B+: 4. CYW43438/CYW43439 (Zero 2 W) and the 3B+'s CYW43455 with its Bluetooth 4.2
//   firmware: each connection takes fixed slots in the controller's schedule, and with Wi-Fi active the
//   coexistence arbiter takes more of them, so connection events start to be missed (and links hit
//   their supervision timeout) sooner than on the newer firmware. The Zero 2 W also has one 2.4 GHz-only
//   radio for both, and 512 MiB of RAM.
// - 4B, 5: 6. The same CYW43455 with Bluetooth 5.0 firmware and dual-band Wi-Fi (on 5 GHz, Wi-Fi and
//   BLE stop competing for the band). We expect a practical ceiling of about 7 (an estimate, not yet
//   measured by this project) and keep one slot of airtime back because every agent also advertises
//   and scans.
// - CM4: 5. Same chip as the 4B, but the antenna is the carrier designer's choice (onboard PCB antenna
//   inside a case, or an external one), often in a metal enclosure: a smaller link budget makes
//   marginal links time out, so one fewer by default.
// - Generic Linux: 4, the config's own default; the controller is unknown.

const ONBOARD_HCI = 'hci0';

const PL011_BT_OVERLAYS: readonly OverlayNote[] = [
  {
    line: 'dtoverlay=disable-bt',
    effect:
      'turns the onboard Bluetooth off and gives the PL011 to GPIO 14/15: hci0 disappears (use a USB or UART controller)',
  },
  {
    line: 'dtoverlay=miniuart-bt',
    effect:
      'moves Bluetooth to the mini UART (its baud follows the core clock: fix core_freq); slower HCI, hci0 stays',
  },
];

function coexistence(chip: string, duty: { '2.4GHz': number; '5GHz'?: number }): RadioQuirk {
  return {
    kind: 'wifi-ble-coexistence',
    chip,
    scanDutyWhileWifiBusy: duty,
    note:
      `${chip} shares one radio and antenna between Wi-Fi and Bluetooth: BLE throughput and scan results ` +
      'drop while Wi-Fi is busy; scan with a lower duty then, or give BLE a USB/UART controller',
  };
}

function pl011Uart(board: string): BluetoothUart {
  return {
    device: '/dev/ttyAMA0',
    alias: '/dev/serial1',
    kind: 'pl011',
    note:
      `on the ${board} the onboard controller sits on the PL011 UART; the kernel attaches it as hci0, so ` +
      'use "hci0" (a "uart:" spec on this port would fight the kernel driver); the header UART is the mini UART',
  };
}

function pl011Quirk(board: string): RadioQuirk {
  return {
    kind: 'bt-uart-overlay',
    overlays: PL011_BT_OVERLAYS,
    note: `on the ${board} Bluetooth takes the PL011 UART (/dev/ttyAMA0); to use the PL011 on GPIO 14/15, one of these overlays moves or removes Bluetooth`,
  };
}

export const RPI_ZERO_2_W: BoardProfile = {
  id: 'rpi-zero-2-w',
  name: 'Raspberry Pi Zero 2 W',
  modelPrefixes: ['Raspberry Pi Zero 2 W'],
  bluetoothChip: 'CYW43438 (later boards CYW43439)',
  bluetoothUart: pl011Uart('Zero 2 W'),
  wifiInterface: 'wlan0',
  ram: { class: 'tight', variantsMib: [512] },
  defaults: { ble: { peripheral: ONBOARD_HCI, central: ONBOARD_HCI, maxLinks: 4 }, mesh: { relay: true } },
  quirks: [
    // 2.4 GHz-only Wi-Fi: Wi-Fi traffic always competes with BLE for the band, so the lowest duty.
    coexistence('CYW43438/CYW43439', { '2.4GHz': 0.25 }),
    pl011Quirk('Zero 2 W'),
  ],
};

export const RPI_3B_PLUS: BoardProfile = {
  id: 'rpi-3b-plus',
  name: 'Raspberry Pi 3 Model B+',
  modelPrefixes: ['Raspberry Pi 3 Model B Plus'],
  bluetoothChip: 'CYW43455',
  bluetoothUart: pl011Uart('3B+'),
  wifiInterface: 'wlan0',
  ram: { class: 'small', variantsMib: [1024] },
  defaults: { ble: { peripheral: ONBOARD_HCI, central: ONBOARD_HCI, maxLinks: 4 }, mesh: { relay: true } },
  quirks: [coexistence('CYW43455', { '2.4GHz': 0.25, '5GHz': 0.5 }), pl011Quirk('3B+')],
};

export const RPI_4B: BoardProfile = {
  id: 'rpi-4b',
  name: 'Raspberry Pi 4 Model B',
  modelPrefixes: ['Raspberry Pi 4 Model B'],
  bluetoothChip: 'CYW43455',
  bluetoothUart: pl011Uart('4B'),
  wifiInterface: 'wlan0',
  ram: { class: 'small', variantsMib: [1024, 2048, 4096, 8192] },
  defaults: { ble: { peripheral: ONBOARD_HCI, central: ONBOARD_HCI, maxLinks: 6 }, mesh: { relay: true } },
  quirks: [coexistence('CYW43455', { '2.4GHz': 0.3, '5GHz': 0.6 }), pl011Quirk('4B')],
};

export const RPI_5: BoardProfile = {
  id: 'rpi-5',
  name: 'Raspberry Pi 5',
  modelPrefixes: ['Raspberry Pi 5 Model B'],
  bluetoothChip: 'CYW43455',
  bluetoothUart: {
    device: 'SoC UART (not GPIO 14/15)',
    kind: 'soc',
    note:
      'on the Pi 5 Bluetooth has a UART of its own, attached by the kernel as hci0; the header UART ' +
      '(/dev/ttyAMA0 on GPIO 14/15) is free without any overlay',
  },
  wifiInterface: 'wlan0',
  ram: { class: 'ample', variantsMib: [2048, 4096, 8192, 16384] },
  defaults: { ble: { peripheral: ONBOARD_HCI, central: ONBOARD_HCI, maxLinks: 6 }, mesh: { relay: true } },
  quirks: [coexistence('CYW43455', { '2.4GHz': 0.3, '5GHz': 0.6 })],
};

export const RPI_CM4: BoardProfile = {
  id: 'rpi-cm4',
  name: 'Raspberry Pi Compute Module 4',
  modelPrefixes: ['Raspberry Pi Compute Module 4'],
  bluetoothChip: 'CYW43455',
  bluetoothUart: pl011Uart('CM4'),
  wifiInterface: 'wlan0',
  ram: { class: 'small', variantsMib: [1024, 2048, 4096, 8192] },
  defaults: { ble: { peripheral: ONBOARD_HCI, central: ONBOARD_HCI, maxLinks: 5 }, mesh: { relay: true } },
  quirks: [
    coexistence('CYW43455', { '2.4GHz': 0.3, '5GHz': 0.6 }),
    pl011Quirk('CM4'),
    {
      kind: 'optional-wireless',
      note:
        'CM4 variants without wireless (part numbers CM40xxxxx) have no onboard Bluetooth or Wi-Fi: ' +
        'no hci0, no wlan0; use a USB or UART BLE controller',
    },
    {
      kind: 'antenna-select',
      options: [
        { line: 'dtparam=ant1', effect: 'onboard PCB antenna (the default)' },
        { line: 'dtparam=ant2', effect: 'external antenna on the U.FL connector' },
      ],
      note: 'the CM4 radio uses either its PCB antenna or an external one; inside a metal case use ant2',
    },
  ],
};

export const GENERIC_LINUX: BoardProfile = {
  id: 'generic-linux',
  name: 'generic Linux',
  modelPrefixes: [],
  bluetoothChip: null,
  bluetoothUart: null,
  wifiInterface: null,
  // Unknown: assume little, like the smallest supported Pi; classifyRam() tells the real class.
  ram: { class: 'small', variantsMib: [] },
  defaults: { ble: { peripheral: ONBOARD_HCI, central: ONBOARD_HCI, maxLinks: 4 }, mesh: { relay: true } },
  quirks: [],
};

/** Every profile, the generic one last (it matches nothing and is the fallback). */
export const BOARD_PROFILES: readonly BoardProfile[] = [
  RPI_ZERO_2_W,
  RPI_3B_PLUS,
  RPI_4B,
  RPI_5,
  RPI_CM4,
  GENERIC_LINUX,
];

export function boardProfile(id: BoardId): BoardProfile {
  return BOARD_PROFILES.find((profile) => profile.id === id) ?? GENERIC_LINUX;
}

const MIB = 1024 * 1024;

/**
 * The RAM class of a machine with this much memory (os.totalmem()). The kernel keeps some for itself
 * and the GPU, so a 512 MiB board reports less than 512 MiB: the bounds have headroom.
 */
export function classifyRam(totalBytes: number): RamClass {
  if (totalBytes <= 640 * MIB) return 'tight';
  if (totalBytes <= 1280 * MIB) return 'small';
  return 'ample';
}
