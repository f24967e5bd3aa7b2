#!/usr/bin/env node
// Runs the BLE emulator for people: `node dist/scripts/ble-emulator/cli.js --controllers 4`
// prints one pty path per controller and keeps running until Ctrl-C (SIGINT) or SIGTERM.
import { parseArgs } from 'node:util';
import { startEmulator } from './emulator.js';

const usage = `usage: node dist/scripts/ble-emulator/cli.js [--controllers N] [--per-open] [--json] [--verbose] [--debug]
  --controllers N  emulated LE controllers, one pty each (default 2, at most 16)
  --per-open       a controller exists only while a host holds its pty open (default: persistent)
  --json           print {"dir","socket","ptys":[...]} on one line instead of one path per line
  --verbose        print btvirt's and socat's output (stderr)
  --debug          run btvirt -d (logs every HCI packet; implies --verbose)
Needs root, btvirt (apt-get install bluez-test-tools), socat and a C compiler.`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      controllers: { type: 'string', default: '2' },
      'per-open': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      debug: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(usage);
    return;
  }
  const controllers = Number(values.controllers);
  const verbose = values.verbose || values.debug;
  const emulator = await startEmulator({
    controllers,
    lifetime: values['per-open'] ? 'per-open' : 'persistent',
    debug: values.debug,
    log: verbose ? (line) => process.stderr.write(`${line}\n`) : undefined,
  });
  if (values.json) {
    console.log(JSON.stringify({ dir: emulator.dir, socket: emulator.socketPath, ptys: emulator.ptys }));
  } else {
    for (const pty of emulator.ptys) console.log(pty);
    console.error(
      `btvirt pid ${emulator.pid}; use a pty as [ble] peripheral/central = "uart:<path>", or ` +
        'BLUETOOTH_HCI_SOCKET_UART_PORT=<path>. Ctrl-C stops.',
    );
  }
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void emulator.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  // Keep the event loop alive until a signal arrives.
  setInterval(() => {}, 1 << 30);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  console.error(usage);
  process.exit(1);
});
