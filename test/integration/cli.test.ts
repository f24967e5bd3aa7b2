// The CLI as users meet it before any agent runs: keygen, id from data_dir, config errors that name
// the key and line, and client commands that say plainly when no agent is running.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, stopAllAgents, temporaryDir } from '../support/agent-process.js';

afterAll(stopAllAgents);

describe('nearmesh CLI', () => {
  it('keygen prints a base64url mesh key of 32 bytes', async () => {
    const result = await runCli(['keygen']);
    expect(result.code).toBe(0);
    const key = result.stdout.trim();
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(key, 'base64url')).toHaveLength(32);
  });

  it('id works without a running agent and stays the same', async () => {
    const dir = temporaryDir();
    const config = join(dir, 'nearmesh.toml');
    writeFileSync(config, `name = "lonely"\ndata_dir = ${JSON.stringify(dir)}\n`);
    const first = await runCli(['id', '--json', '--config', config]);
    expect(first.code).toBe(0);
    const parsed = JSON.parse(first.stdout) as { id: string; name: string };
    expect(parsed.id).toMatch(/^[0-9a-f]{16}$/);
    expect(parsed.name).toBe('lonely');
    const second = await runCli(['id', '--config', config]);
    expect(second.stdout.trim()).toBe(`${parsed.id}  lonely`);
  });

  it.each([
    ['[wifi]\nlisten = "0.0.0.0"\n', /line 2.*wifi\.listen/],
    ['nmae = "x"\n', /line 1.*nmae/],
    ['[ble]\nenabled = "sometimes"\n', /line 2.*ble\.enabled/],
    ['mesh_key = "c2hvcnQ"\n', /line 1.*mesh_key/],
    ['[[peers]]\naddress = "10.0.0.1:7450"\n[[peers]]\naddress = "nope"\n', /line 4.*peers\[1\]\.address/],
    ['[wifi\n', /line 1/],
  ])('agent refuses config %j with a message naming the key', async (toml, pattern) => {
    const dir = temporaryDir();
    const config = join(dir, 'bad.toml');
    writeFileSync(config, toml);
    const result = await runCli(['agent', '--config', config]);
    expect(result.code).not.toBe(0);
    expect(result.code).not.toBeNull();
    expect(result.stderr).toContain(config);
    expect(result.stderr).toMatch(pattern);
  });

  it('a missing config file is an error naming it', async () => {
    const result = await runCli(['agent', '--config', '/nonexistent/nearmesh.toml']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/\/nonexistent\/nearmesh\.toml/);
  });

  it('client commands fail with one line when no agent runs', async () => {
    const dir = temporaryDir();
    for (const command of [['status'], ['peers'], ['send', 'x', 'y'], ['listen']]) {
      const result = await runCli([...command, '--socket', join(dir, 'none.sock')]);
      expect(result.code).toBe(1);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toMatch(/no agent is listening/);
    }
  });
});
