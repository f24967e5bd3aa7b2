// `nearmesh stream` between real agents on loopback: standard input piped to a named stream on the peer
// comes out of `nearmesh stream --receive` there, whole and in order; a name nobody receives is refused.
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import type { PeerInfo } from '../../agent/links/peer-directory.js';
import {
  type AgentProcess,
  CLI_PATH,
  type CliResult,
  freePorts,
  sleep,
  startAgent,
  stopAllAgents,
  waitFor,
} from '../support/agent-process.js';

const meshKey = generateMeshKey();
const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** `nearmesh stream --receive <name>` against `agent`, its output piped to this test. */
function receiveOn(agent: AgentProcess, name: string): ChildProcessByStdio<null, Readable, Readable> {
  return spawn(process.execPath, [CLI_PATH, 'stream', '--receive', name, '--socket', agent.socketPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** What `output` yields from now on. */
function collect(output: Readable): Buffer[] {
  const chunks: Buffer[] = [];
  output.on('data', (chunk: Buffer) => chunks.push(chunk));
  return chunks;
}

/** The sending command succeeded and the receiver printed exactly `bytes` (nothing trailing behind). */
async function expectDelivered(sent: CliResult, chunks: Buffer[], bytes: Uint8Array): Promise<void> {
  expect(sent.stderr).toBe('');
  expect(sent.code).toBe(0);
  const length = (): number => chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  await waitFor(
    'every byte at the receiver',
    async () => (length() >= bytes.length ? true : undefined),
    20_000,
    50,
  );
  await sleep(300);
  expect(length()).toBe(bytes.length);
  expect(sha256(Buffer.concat(chunks))).toBe(sha256(bytes));
}

describe('nearmesh stream between two agents', () => {
  let alpha: AgentProcess;
  let bravo: AgentProcess;

  beforeAll(async () => {
    const [a, b] = (await freePorts(2)) as [number, number];
    bravo = await startAgent({ name: 'bravo', meshKey, port: b });
    alpha = await startAgent({ name: 'alpha', meshKey, port: a, peers: [`127.0.0.1:${b}`] });
    await waitFor('alpha linked to bravo', async () => {
      const peers = await alpha.json<PeerInfo[]>(['peers']);
      return peers.some((peer) => peer.name === 'bravo' && peer.state === 'connected') ? true : undefined;
    });
  }, 30_000);

  afterAll(stopAllAgents);

  it('pipes 3 MiB of standard input to the receiving side, whole and in order', async () => {
    const receiver = receiveOn(bravo, 'camera');
    const chunks = collect(receiver.stdout);
    try {
      // The receiving client is listening once its request reached the agent.
      await sleep(700);
      const bytes = randomBytes(3 * 1024 * 1024);
      const sent = await alpha.cli(['stream', 'bravo', 'camera', '--json'], 60_000, bytes);
      await expectDelivered(sent, chunks, bytes);
      expect(JSON.parse(sent.stdout)).toMatchObject({ bytes: bytes.length });
    } finally {
      receiver.kill('SIGKILL');
    }
  }, 90_000);

  it('slows the sender to a receiver whose standard output is not read, then delivers every byte', async () => {
    const receiver = receiveOn(bravo, 'slow');
    try {
      await sleep(700);
      // Far more than a pipe, both control sockets and the stream's 256 KiB window hold together.
      const bytes = randomBytes(16 * 1024 * 1024);
      let finished = false;
      const sending = alpha.cli(['stream', 'bravo', 'slow', '--json'], 90_000, bytes).finally(() => {
        finished = true;
      });
      // Nothing reads the receiver's output yet: without backpressure its CLI would take it all into memory
      // and the sender would be done in well under a second.
      await sleep(3_000);
      expect(finished).toBe(false);
      const chunks = collect(receiver.stdout);
      await expectDelivered(await sending, chunks, bytes);
    } finally {
      receiver.kill('SIGKILL');
    }
  }, 90_000);

  it('ends both sides with an error when the receiving reader goes away (`| head`)', async () => {
    const receiver = receiveOn(bravo, 'headed');
    let stderr = '';
    receiver.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => receiver.once('exit', resolve));
    try {
      await sleep(700);
      receiver.stdout.once('data', () => receiver.stdout.destroy());
      const sent = await alpha.cli(['stream', 'bravo', 'headed'], 60_000, randomBytes(8 * 1024 * 1024));
      expect(sent.code).not.toBe(0);
      expect(sent.stderr).toMatch(/closed|reset/);
      expect(await exited).not.toBe(0);
      expect(stderr).toMatch(/EPIPE|standard output closed/);
      expect(stderr).not.toMatch(/Unhandled|node:internal|\n\s+at /);
    } finally {
      receiver.kill('SIGKILL');
    }
  }, 90_000);

  it('refuses a stream to a name nobody receives, and one to an unknown peer', async () => {
    const refused = await alpha.cli(['stream', 'bravo', 'nobody-listens'], 20_000, Buffer.from('hello'));
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/no-listener|nobody|listen/);
    const unknown = await alpha.cli(['stream', 'ghost', 'camera'], 20_000, Buffer.from('hello'));
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/unknown peer/);
  });
});
