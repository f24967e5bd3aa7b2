// Synchronised calls do not depend on the agents' system clocks agreeing: three real agents whose clocks
// are seconds apart (libfaketime) fire a group call at one real instant.
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { CallResultRow } from '../../agent/api.js';
import {
  type AgentProcess,
  freePorts,
  startAgent,
  stopAllAgents,
  temporaryDir,
} from '../support/agent-process.js';
import { describeWhenAvailable } from '../support/requirements.js';
import { until } from '../support/until.js';

const MESH_KEY = Buffer.from('coordination-clock-test-key-32b!').toString('base64url');
const LIBFAKETIME = ['x86_64-linux-gnu', 'aarch64-linux-gnu', 'arm-linux-gnueabihf']
  .map((arch) => `/usr/lib/${arch}/faketime/libfaketimeMT.so.1`)
  .find((path) => existsSync(path));

/** Agents and how far their clocks are off (libfaketime's FAKETIME offsets). */
const AGENTS = [
  { name: 'ck-caller', skew: undefined },
  { name: 'ck-ahead', skew: '+3s' },
  { name: 'ck-behind', skew: '-2s' },
];

describeWhenAvailable(
  'synchronised calls across skewed clocks',
  LIBFAKETIME === undefined ? 'libfaketime is not installed (apt-get install faketime)' : undefined,
  () => {
    let dir: string;
    let agents: AgentProcess[];

    beforeAll(async () => {
      dir = temporaryDir('nearmesh-clock-');
      // The handler reads the real clock: libfaketime is dropped from its environment.
      const record = join(dir, 'record');
      writeFileSync(
        record,
        `#!/bin/sh\ncat > /dev/null\nenv -u LD_PRELOAD -u FAKETIME date +%s%N >> ${dir}/"$RECORD_AS".log\necho '"ok"'\n`,
      );
      chmodSync(record, 0o755);
      const ports = await freePorts(AGENTS.length);
      agents = await Promise.all(
        AGENTS.map(({ name, skew }, i) =>
          startAgent({
            name,
            meshKey: MESH_KEY,
            port: ports[i] as number,
            peers: ports.filter((_, j) => j < i).map((port) => `127.0.0.1:${port}`),
            groups: ['scene'],
            env: {
              RECORD_AS: name,
              ...(skew !== undefined && { LD_PRELOAD: LIBFAKETIME as string, FAKETIME: skew }),
            },
            extraToml: ['[[actions]]', 'name = "record"', `exec = [${JSON.stringify(record)}]`].join('\n'),
          }),
        ),
      );
      await until(
        'every agent to know the others',
        async () => {
          const rows = JSON.parse((await agents[0]?.cli(['actions', '--json']))?.stdout ?? '[]') as unknown[];
          return rows.length === AGENTS.length;
        },
        { timeoutMs: 30_000 },
      );
    }, 60_000);

    afterAll(stopAllAgents);

    it('every member fires at the same real instant although their clocks are 5 s apart', async () => {
      const result = await (agents[0] as AgentProcess).cli(
        ['call', 'group:scene', 'record', '--in', '800ms', '--json'],
        30_000,
      );
      const rows = JSON.parse(result.stdout) as CallResultRow[];
      expect(rows.map((row) => row.status)).toEqual(['ok', 'ok', 'ok']);
      const realNs = AGENTS.map(({ name }) => BigInt(readFileSync(join(dir, `${name}.log`), 'utf8').trim()));
      const earliest = [...realNs].sort((a, b) => Number(a - b))[0] as bigint;
      const spreadMs = Math.max(...realNs.map((ns) => Number(ns - earliest) / 1e6));
      console.log(`--in 800ms across clocks 5 s apart: real spread ${spreadMs.toFixed(2)} ms`);
      // Trusting the system clocks would put them seconds apart; a loose bound keeps this about correctness.
      expect(spreadMs).toBeLessThan(50);
      // The fired_at each reports is in the caller's clock: they agree too.
      const fired = rows.map((row) => row.fired_at_ms ?? Number.NaN);
      expect(Math.max(...fired) - Math.min(...fired)).toBeLessThan(50);
    });
  },
);
