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

process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);
process.on('SIGTERM', () => process.exit(0));
