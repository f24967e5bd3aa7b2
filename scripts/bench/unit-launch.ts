// Agents started as the systemd unit starts them: its Environment= assignments and the node flags of its
// ExecStart (scripts/systemd/nearmesh.service), which are part of what an agent's memory and latency are.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type BenchChild, startChild } from './bench-child.js';

const CLI_PATH = fileURLToPath(new URL('../../agent/cli/main.js', import.meta.url));
// From dist/scripts/bench to the unit's source, which the package ships.
const UNIT_PATH = fileURLToPath(new URL('../../../scripts/systemd/nearmesh.service', import.meta.url));

/** What the unit puts around `main.js agent`: its Environment= assignments and the node flags of ExecStart. */
export interface UnitLaunch {
  readonly env: readonly string[];
  readonly nodeFlags: readonly string[];
}

export function unitLaunch(): UnitLaunch {
  const lines = readFileSync(UNIT_PATH, 'utf8').split('\n');
  const exec = lines
    .find((line) => line.startsWith('ExecStart='))
    ?.slice('ExecStart='.length)
    .split(/\s+/);
  const main = exec?.findIndex((word) => word.endsWith('/cli/main.js')) ?? -1;
  if (exec?.[0] !== '@NODE@' || main < 0) throw new Error(`${UNIT_PATH}: no "ExecStart=@NODE@ ... main.js"`);
  const env = lines.filter((line) => line.startsWith('Environment=')).map((line) => line.slice(12));
  return { env, nodeFlags: exec.slice(1, main) };
}

/** `nearmesh agent --config <path>` as the unit runs it (`env` execs node in place: the pid is the agent's). */
export function startUnitAgent(launch: UnitLaunch, configPath: string): BenchChild {
  return startChild('env', [
    ...launch.env,
    process.execPath,
    ...launch.nodeFlags,
    CLI_PATH,
    'agent',
    '--config',
    configPath,
  ]);
}
