// The protocol every BLE child process speaks to the test or bench that started it (noble and bleno
// each keep one global binding, so every role runs in a process of its own): JSON lines out, exit on failure.

/** An environment variable, or the fallback; a missing required one is an error. */
export const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is required`);
  return value;
};

/** One JSON line to the parent. */
export const say = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);

/** Reports the failure to the parent as an 'error' line and exits non-zero. */
export const fail = (error) => {
  say({ event: 'error', message: String(error?.stack ?? error) });
  process.exit(1);
};

/** The RX and TX characteristics of a connected noble peripheral's service; throws when either is missing. */
export async function findRxTx(peripheral, serviceUuid, rxUuid, txUuid) {
  const { characteristics } = await peripheral.discoverSomeServicesAndCharacteristicsAsync(
    [serviceUuid],
    [rxUuid, txUuid],
  );
  const rx = characteristics.find((c) => c.uuid === rxUuid);
  const tx = characteristics.find((c) => c.uuid === txUuid);
  if (!rx || !tx) throw new Error(`characteristics not found: ${characteristics.map((c) => c.uuid)}`);
  return { rx, tx };
}

process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);
process.on('SIGTERM', () => process.exit(0));
