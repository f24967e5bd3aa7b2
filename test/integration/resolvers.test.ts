// Resolvers in real agent processes on loopback, with no [[peers]] and no mDNS: an `[[resolvers]] exec`
// script is the only way the agents learn of each other. They link and a message goes through;
// `nearmesh resolvers` and `status` show what each resolver found, dialled and linked; a script that prints
// garbage and dies is counted, said once, restarted, and the agent serves on.
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentStatus, ResolverInfo } from '../../agent/api.js';
import {
  type AgentProcess,
  expectDelivered,
  freePorts,
  startAgent,
  stopAllAgents,
  temporaryDir,
  untilLinked,
} from '../support/agent-process.js';
import { until } from '../support/until.js';

const MESH_KEY = Buffer.from('resolvers-test-mesh-key-32bytes!').toString('base64url');

function script(dir: string, name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

const resolverTable = (exec: string, name?: string): string =>
  [
    '[[resolvers]]',
    `exec = [${JSON.stringify(exec)}]`,
    ...(name === undefined ? [] : [`name = "${name}"`]),
  ].join('\n');

describe('resolvers in a running agent', () => {
  let alpha: AgentProcess;
  let bravo: AgentProcess;

  beforeAll(async () => {
    const dir = temporaryDir('nearmesh-resolvers-');
    const [alphaPort, bravoPort] = (await freePorts(2)) as [number, number];
    // What a site's lookup would print: bravo's address, then nothing more while it runs.
    const lookup = script(
      dir,
      'site-lookup.sh',
      `echo '{"found": {"address": "127.0.0.1:${bravoPort}", "name": "bravo"}}'\nexec sleep 600`,
    );
    const broken = script(
      dir,
      'broken.sh',
      `echo 'address=127.0.0.1:1'\necho 'lookup failed: no lease file' >&2\nexit 2`,
    );
    bravo = await startAgent({ name: 'bravo', meshKey: MESH_KEY, port: bravoPort });
    alpha = await startAgent({
      name: 'alpha',
      meshKey: MESH_KEY,
      port: alphaPort,
      extraToml: `${resolverTable(lookup)}\n${resolverTable(broken, 'broken')}`,
    });
  }, 30_000);

  afterAll(() => stopAllAgents());

  it('links the agents through what the script found, and a message goes through', async () => {
    await untilLinked(alpha, bravo);
    await expectDelivered(alpha, bravo, 'found by a script');
  });

  it('shows each resolver, its state and what it found, dialled and linked', async () => {
    await until('the link counted', async () => {
      const rows = await alpha.json<ResolverInfo[]>(['resolvers']);
      return rows.find((row) => row.name === 'site-lookup')?.links === 1;
    });
    const rows = await alpha.json<ResolverInfo[]>(['resolvers']);
    expect(rows.map((row) => row.name)).toEqual(['endpoints', 'static', 'site-lookup', 'broken']);
    expect(rows.find((row) => row.name === 'site-lookup')).toMatchObject({
      state: 'running',
      candidates: 1,
      found: 1,
      invalid: 0,
      links: 1,
    });
    const table = await alpha.cli(['resolvers']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^RESOLVER +STATE +CANDIDATES +FOUND +LOST +REFUSED +DIALS +LINKS\n/);
    expect(table.stdout).toMatch(/\nsite-lookup +running +1 +1 +0 +0 +\d+ +1\n/);
    const status = await alpha.json<AgentStatus>(['status']);
    expect(status.resolvers).toContainEqual({ name: 'site-lookup', state: 'running', candidates: 1 });
    expect((await alpha.cli(['status'])).stdout).toMatch(
      /\nresolvers endpoints running \(0\), static running \(0\), site-lookup running \(1\), broken \w+ \(0\)\n/,
    );
  });

  it('restarts a script that prints garbage and exits, says so, and the agent serves on', async () => {
    await until(
      'the broken script restarted',
      () => (alpha.output.match(/broken\.sh exited with code 2/g) ?? []).length >= 2,
      {
        timeoutMs: 15_000,
      },
    );
    // Its stderr reached the log under its name; its garbage was said once, not at every run.
    expect(alpha.output).toContain('broken: lookup failed: no lease file');
    expect(alpha.output.split('\n').filter((line) => line.includes('bad line'))).toHaveLength(1);
    const row = (await alpha.json<ResolverInfo[]>(['resolvers'])).find((r) => r.name === 'broken');
    expect(row?.state === 'restarting' || row?.state === 'running').toBe(true);
    await expectDelivered(bravo, alpha, 'still serving');
  });
});
