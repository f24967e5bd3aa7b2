// Joining with a code between real agent processes on loopback: an agent on its defaults has no mesh and
// says how to get one; the first invite founds a mesh; a typo never leaves the joining device; a wrong code
// is refused and counted, three close the invitation; the right code hands over the key, both link, a
// message goes through, and the joined device is still in the mesh after a restart.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentStatus, InviteResult, JoinResult } from '../../agent/api.js';
import type { ListenEvent } from '../../agent/control/wire.js';
import type { PeerInfo } from '../../agent/links/peer-directory.js';
import { verhoeffDigit } from '../../agent/security/join-code.js';
import {
  type AgentProcess,
  CLI_PATH,
  freePorts,
  startAgent,
  stopAllAgents,
} from '../support/agent-process.js';
import { until, within } from '../support/until.js';

/** A well-formed code (right check digit) with another passcode than `code`. */
function wrongCodeFor(code: string): string {
  const digits = code.replace(/-/g, '');
  const body = `${digits.slice(0, 2)}${String((Number(digits.slice(2, 10)) + 7) % 1e8).padStart(8, '0')}`;
  return body + verhoeffDigit(body);
}

const linked = (agent: AgentProcess, peer: string): Promise<unknown> =>
  until(`${agent.spec.name} linked to ${peer}`, async () => {
    const peers = await agent.json<PeerInfo[]>(['peers']);
    return peers.some((row) => row.id === peer && row.state === 'connected');
  });

describe('joining a mesh with a code', () => {
  let alpha: AgentProcess;
  let bravo: AgentProcess;
  let charlie: AgentProcess;
  let ports: number[];
  let alphaAddress: string;

  beforeAll(async () => {
    ports = await freePorts(3);
    alphaAddress = `127.0.0.1:${ports[0]}`;
    const start = (name: string, i: number) =>
      startAgent({ name, meshKey: undefined, port: ports[i] as number });
    [alpha, bravo, charlie] = await Promise.all([start('alpha', 0), start('bravo', 1), start('charlie', 2)]);
  }, 30_000);

  afterAll(() => stopAllAgents());

  it('on its defaults an agent has no mesh and says how to get one', async () => {
    const status = await alpha.json<AgentStatus>(['status']);
    expect(status.mesh.name).toBeNull();
    expect(alpha.output).toContain('no mesh yet');
    expect(alpha.output).toContain('nearmesh join CODE');
    // Where its config is, and how to see peers and check the device (a JSON log line: quotes escaped).
    await until('the config line', () =>
      alpha.output.includes(
        `config: ${alpha.configPath}; see linked peers with \\"nearmesh peers --config ${alpha.configPath}\\"`,
      ),
    );
    const human = await alpha.cli(['status']);
    expect(human.stdout).toMatch(/mesh +none yet \(waiting to be invited/);
    const key = await alpha.cli(['mesh-key']);
    expect(key.code).toBe(1);
    expect(key.stderr).toContain('no mesh yet');
  });

  it('catches a typo on the joining device before asking its agent', async () => {
    const result = await bravo.cli(['join', '1234-5678-900']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^nearmesh: that code has a typo/);
  });

  let invitation: InviteResult;

  it('founds a mesh with the first invite', async () => {
    invitation = await alpha.json<InviteResult>(['invite', '--no-wait', '--mesh-name', 'greenhouse']);
    expect(invitation).toMatchObject({ state: 'open', founded: true, mesh: 'greenhouse', attempts_left: 3 });
    expect(invitation.code).toMatch(/^\d{4}-\d{4}-\d{3}$/);
    expect((await alpha.json<AgentStatus>(['status'])).mesh.name).toBe('greenhouse');
  });

  it('refuses a wrong code with the tries left, and the device stays out of the mesh', async () => {
    const result = await bravo.cli(['join', wrongCodeFor(invitation.code), '--address', alphaAddress]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('wrong code (2 more tries before the invitation closes)');
    expect((await bravo.json<AgentStatus>(['status'])).mesh.name).toBeNull();
    expect(await alpha.json<InviteResult>(['invitation'])).toMatchObject({
      id: invitation.id,
      state: 'open',
      attempts_left: 2,
    });
  });

  it('hands the key to the right code: both link, a message goes through, and a restart keeps it', async () => {
    const waiting = alpha.spawnCli(['invite', '--json', '--for', '2m']);
    // Listened for at once: it may exit (the join seen) before the calls below return.
    const waitingExited = new Promise<number | null>((resolve) => waiting.once('exit', resolve));
    let out = '';
    waiting.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    const opened = await until('the invitation printed', () => {
      const first = out.split('\n')[0];
      return first?.endsWith('}') ? (JSON.parse(first) as InviteResult) : undefined;
    });
    const joined = await bravo.json<JoinResult>(['join', opened.code, '--address', alphaAddress]);
    expect(joined).toMatchObject({ mesh: 'greenhouse', inviter: { name: 'alpha' }, address: alphaAddress });
    const bravoId = (await bravo.json<{ id: string }>(['id'])).id;
    const alphaId = joined.inviter.peer;
    // The waiting `invite` reports who joined and exits 0.
    const exitCode = await within(waitingExited, () => `the waiting invite to exit: ${out}`);
    expect(exitCode).toBe(0);
    const outcome = JSON.parse(out.trim().split('\n').at(-1) as string) as InviteResult;
    expect(outcome).toMatchObject({ state: 'joined', joined: { peer: bravoId, name: 'bravo' }, code: '' });

    await linked(bravo, alphaId);
    await linked(alpha, bravoId);
    const sent = await bravo.cli(['send', 'alpha', 'hello from the new device']);
    expect(sent.code).toBe(0);
    await until('the message in alpha’s inbox', async () => {
      const list = await alpha.json<ListenEvent[]>(['inbox', 'list']);
      return list.some((message) => message.payload === 'hello from the new device');
    });
    expect((await bravo.json<AgentStatus>(['status'])).mesh.name).toBe('greenhouse');

    // The key and the name were saved: after a restart bravo is in the mesh and links again.
    await within(bravo.stop(), () => `bravo to stop on SIGTERM: ${bravo.output.slice(-2000)}`);
    bravo = await startAgent({ ...bravo.spec, dir: bravo.dir });
    expect((await bravo.json<AgentStatus>(['status'])).mesh.name).toBe('greenhouse');
    expect(bravo.output).not.toContain('no mesh yet');
    await linked(alpha, bravoId);

    // `listen | head -n 1` takes the one message head printed, ends quietly once the pipe is gone, and
    // leaves what it did not write in the inbox.
    const listen = `${process.execPath} ${CLI_PATH} listen --json --socket ${alpha.socketPath}`;
    // The reading side closes the pipe, then says so: the next message must find no reader (a message written
    // into the pipe before head exited would count as taken).
    const reader = '(head -n 1; exec 0<&-; echo head-exited >&2)';
    const piped = spawn('sh', ['-c', `${listen} | ${reader}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => piped.once('exit', resolve));
    let pipedOut = '';
    let pipedErr = '';
    piped.stdout.on('data', (chunk: Buffer) => {
      pipedOut += chunk.toString();
    });
    piped.stderr.on('data', (chunk: Buffer) => {
      pipedErr += chunk.toString();
    });
    await until('head printed the waiting message', () => pipedOut.includes('hello from the new device'));
    await until('head gone', () => pipedErr.includes('head-exited'));
    expect((await bravo.cli(['send', 'alpha', 'after head left'])).code).toBe(0);
    const pipedExit = await within(exited, () => `listen | head to end: ${pipedErr}`);
    expect(pipedExit).toBe(0);
    expect(pipedErr).toBe('head-exited\n');
    const left = await alpha.json<ListenEvent[]>(['inbox', 'list']);
    expect(left.map((message) => message.payload)).toEqual(['after head left']);

    // A device already in a mesh is told how to leave it before it can join another.
    const again = await bravo.cli(['join', opened.code, '--address', alphaAddress]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already in mesh "greenhouse"');
  }, 60_000);

  it('closes an invitation after three wrong codes: then the right one gets nothing', async () => {
    const opened = await alpha.json<InviteResult>(['invite', '--no-wait']);
    const wrong = wrongCodeFor(opened.code);
    for (const left of [2, 1, 0]) {
      const result = await charlie.cli(['join', wrong, '--address', alphaAddress]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`wrong code (${left} more tr`);
    }
    expect(await alpha.json<InviteResult>(['invitation'])).toMatchObject({
      state: 'failed',
      attempts_left: 0,
    });
    const late = await charlie.cli(['join', opened.code, '--address', alphaAddress, '--timeout', '2s']);
    expect(late.code).toBe(1);
    expect(late.stderr).toContain('could not join');
    expect((await charlie.json<AgentStatus>(['status'])).mesh.name).toBeNull();
    const counters = (await alpha.json<AgentStatus>(['status'])).counters;
    expect(counters['join.wrong_codes']).toBe(4);
  }, 30_000);

  it('prints the join command as a QR code for a phone when asked (on a terminal by default)', async () => {
    const printed = await alpha.cli(['invite', '--no-wait', '--qr']);
    expect(printed.code).toBe(0);
    const code = /invitation code: (\d{4}-\d{4}-\d{3})/.exec(printed.stdout)?.[1];
    expect(printed.stdout).toContain(`on the new device run:  nearmesh join ${code}`);
    const qr = printed.stdout.split('\n').filter((line) => /^[ ▀▄█]+$/.test(line) && line.trim() !== '');
    expect(qr.length).toBeGreaterThanOrEqual(10);
    expect(new Set(qr.map((line) => [...line].length)).size).toBe(1);
    const plain = await alpha.cli(['invite', '--no-wait']);
    expect(plain.stdout).not.toMatch(/[▀▄█]/);
    expect((await alpha.cli(['invitation', '--cancel'])).stdout).toBe('invitation closed\n');
  });
});
