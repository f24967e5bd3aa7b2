// The second implementations of our cryptography (test/integration/children/*-libsodium.py): Python with
// libsodium through ctypes and cbor2. Each reads a vector as JSON on stdin and prints what it computed.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cbor2Missing } from './cbor2.js';

const PYTHON = '/usr/bin/python3';
const CHILDREN = new URL('../integration/children/', import.meta.url);

/** Why the second implementations cannot run here, or undefined when they can. */
export function libsodiumSecondMissing(): string | undefined {
  if (!existsSync(PYTHON)) return `${PYTHON} is not installed`;
  const probe = spawnSync(PYTHON, ['-c', 'import ctypes; ctypes.CDLL("libsodium.so.23")']);
  if (probe.status !== 0) return 'libsodium.so.23 cannot be loaded (apt-get install libsodium23)';
  return cbor2Missing();
}

/** Runs `script` (a file of test/integration/children) on the vector; its stderr and exit status with it. */
export function runLibsodiumSecond(
  script: string,
  vector: unknown,
): { stdout: string; stderr: string; status: number | null } {
  const child = spawnSync(PYTHON, [new URL(script, CHILDREN).pathname], {
    input: JSON.stringify(vector),
    encoding: 'utf8',
  });
  return { stdout: child.stdout, stderr: child.stderr, status: child.status };
}
