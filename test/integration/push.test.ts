// `nearmesh push` between real agents on loopback: a file arrives whole and verified in the receiver's
// inbox with progress on the way; an inbox that is too small (max_bytes) or full (a real tmpfs, root only)
// refuses it with a clear error and leaves no file behind.

import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import type { PeerInfo } from '../../agent/links/peer-directory.js';
import {
  type AgentProcess,
  freePorts,
  startAgent,
  stopAllAgents,
  temporaryDir,
} from '../support/agent-process.js';
import { describeWhenAvailable } from '../support/requirements.js';
import { until } from '../support/until.js';

const meshKey = generateMeshKey();
const MiB = 1024 * 1024;

interface PushLine {
  type: string;
  bytesAcked?: number;
  total?: number;
  sha256?: string;
  message?: string;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function pushLines(stdout: string): PushLine[] {
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as PushLine);
}

/** A receiver with `transferToml` lines in its [transfer] table, and a sender that dials it. */
async function pair(name: string, transferToml: string[]) {
  const [senderPort, receiverPort] = (await freePorts(2)) as [number, number];
  const receiver = await startAgent({
    name,
    meshKey,
    port: receiverPort,
    extraToml: ['[transfer]', ...transferToml].join('\n'),
  });
  const from = await startAgent({
    name: 'pusher',
    meshKey,
    port: senderPort,
    peers: [`127.0.0.1:${receiverPort}`],
  });
  return { from, receiver };
}

async function linked(agent: AgentProcess, name: string): Promise<void> {
  await until(`${agent.spec.name} linked to ${name}`, async () => {
    const peers = await agent.json<PeerInfo[]>(['peers']);
    return peers.some((peer) => peer.name === name && peer.state === 'connected');
  });
}

describe('nearmesh push between two agents', () => {
  let pusher: AgentProcess;
  let bravo: AgentProcess;
  let charlie: AgentProcess;
  const inbox = temporaryDir('nearmesh-inbox-');
  const files = mkdtempSync(join(tmpdir(), 'nearmesh-push-'));

  beforeAll(async () => {
    const ports = await freePorts(3);
    const [pusherPort, bravoPort, charliePort] = ports as [number, number, number];
    bravo = await startAgent({
      name: 'bravo',
      meshKey,
      port: bravoPort,
      extraToml: ['[transfer]', `inbox = ${JSON.stringify(inbox)}`].join('\n'),
    });
    // charlie takes files of at most 1 MiB.
    charlie = await startAgent({
      name: 'charlie',
      meshKey,
      port: charliePort,
      extraToml: ['[transfer]', `max_bytes = ${MiB}`].join('\n'),
    });
    pusher = await startAgent({
      name: 'pusher',
      meshKey,
      port: pusherPort,
      peers: [`127.0.0.1:${bravoPort}`, `127.0.0.1:${charliePort}`],
    });
    await linked(pusher, 'bravo');
    await linked(pusher, 'charlie');
  }, 60_000);

  afterAll(async () => {
    await stopAllAgents();
    rmSync(files, { recursive: true, force: true });
  });

  it('sends a file that arrives whole in the inbox, with progress and the same SHA-256', async () => {
    const bytes = randomBytes(6 * MiB);
    const path = join(files, 'photo.raw');
    writeFileSync(path, bytes);
    const result = await pusher.cli(['push', 'bravo', path, '--json'], 60_000);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const lines = pushLines(result.stdout);
    const progress = lines.filter((line) => line.type === 'progress');
    expect(progress.length).toBeGreaterThan(0);
    // Progress only grows, and ends at the whole file.
    const acked = progress.map((line) => line.bytesAcked ?? -1);
    expect(acked).toEqual([...acked].sort((a, b) => a - b));
    expect(progress.at(-1)?.total).toBe(bytes.length);
    const sent = lines.at(-1);
    expect(sent).toMatchObject({ type: 'sent', size: bytes.length, sha256: sha256(bytes) });
    // Only the verified file: no part or sidecar left where apps look.
    const received = readdirSync(inbox).filter((name) => !name.startsWith('.'));
    expect(received).toEqual(['photo.raw']);
    expect(sha256(readFileSync(join(inbox, 'photo.raw')))).toBe(sha256(bytes));
    const status = await bravo.json<{ counters: Record<string, number> }>(['status']);
    expect(status.counters['transfers.received']).toBe(1);
  }, 90_000);

  it('fails cleanly when the file is larger than the receiver takes (max_bytes)', async () => {
    const path = join(files, 'too-big.bin');
    writeFileSync(path, randomBytes(2 * MiB));
    const result = await pusher.cli(['push', 'charlie', path, '--json'], 30_000);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/too-large|exceeds the limit/);
    expect(pushLines(result.stdout).at(-1)).toMatchObject({ type: 'failed' });
    const charlieStatus = await charlie.json<{ data_dir: string; counters: Record<string, number> }>([
      'status',
    ]);
    expect(charlieStatus.counters['transfers.refused']).toBe(1);
    // Refused up front: the inbox was not even created.
    expect(existsSync(join(charlieStatus.data_dir, 'inbox'))).toBe(false);
  });

  it('says which file it cannot read, and to whom it cannot send', async () => {
    const missing = await pusher.cli(['push', 'bravo', join(files, 'nope.bin')]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/nope\.bin: no such file/);
    const nobody = await pusher.cli(['push', 'nobody', join(files, 'photo.raw')]);
    expect(nobody.code).not.toBe(0);
    expect(nobody.stderr).toContain('no peer "nobody" is known');
  });
});

describeWhenAvailable(
  'nearmesh push into a full inbox (a real tmpfs)',
  process.getuid?.() === 0 ? undefined : 'needs root to mount a tmpfs',
  () => {
    const mountPoint = mkdtempSync(join(tmpdir(), 'nearmesh-full-inbox-'));
    const files = mkdtempSync(join(tmpdir(), 'nearmesh-push-full-'));

    beforeAll(() => {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mountPoint]);
    });

    afterAll(async () => {
      await stopAllAgents();
      execFileSync('umount', [mountPoint]);
      rmSync(mountPoint, { recursive: true, force: true });
      rmSync(files, { recursive: true, force: true });
    });

    it('refuses a file that does not fit and leaves nothing in the inbox', async () => {
      const { from, receiver } = await pair('full', [`inbox = ${JSON.stringify(mountPoint)}`]);
      await linked(from, 'full');
      const path = join(files, 'video.bin');
      writeFileSync(path, randomBytes(3 * MiB));
      const result = await from.cli(['push', 'full', path], 30_000);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(/disk-full|space/);
      expect(readdirSync(mountPoint).filter((name) => !name.startsWith('.'))).toEqual([]);
      // The receiver is still serving.
      expect((await receiver.json<{ name: string }>(['id'])).name).toBe('full');
    }, 60_000);
  },
);
