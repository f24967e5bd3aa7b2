// Crash safety of the durable queue: a child process (the built dist/ module, as the agent runs it)
// enqueues 1 KiB messages for three peers in a tight loop, with cumulative acks now and then, and reports
// each enqueue on stdout after enqueue() returned; the test kills it with SIGKILL mid-stream, reopens
// the file and checks that every reported message is there, in order, none twice, then lets a new child
// continue (seqs carry on) and kills it again.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { DurableQueue } from '../../../../agent/messaging/reliable/durable-queue.js';

const DIST_MODULE = pathToFileURL(
  resolve(import.meta.dirname, '../../../../dist/agent/messaging/reliable/durable-queue.js'),
);
const PEERS = ['peer-a', 'peer-b', 'peer-c'];

const directories: string[] = [];
const children = new Set<ChildProcess>();
afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  for (const dir of directories) rmSync(dir, { recursive: true, force: true });
});

// E <peer> <seq> <counter>: enqueue() returned. I <peer> <upto>: about to acknowledge. A: acknowledged.
const CHILD = `
import { DurableQueue } from ${JSON.stringify(DIST_MODULE.href)};
const [path, start] = process.argv.slice(2);
const peers = ${JSON.stringify(PEERS)};
const queue = await DurableQueue.open(path, { maxMessagesPerPeer: 1e6, maxMessages: 1e6, maxBytes: 1e9, maxBytesPerPeer: 1e9 });
const payload = new Uint8Array(1024);
const view = new DataView(payload.buffer);
process.stdout.write('ready\\n');
for (let counter = Number(start); ; counter++) {
  const peer = peers[counter % peers.length];
  view.setUint32(0, counter);
  const { seq } = queue.enqueue(peer, payload);
  process.stdout.write(\`E \${peer} \${seq} \${counter}\\n\`);
  if (counter % 25 === 24) {
    const upto = seq - 5;
    process.stdout.write(\`I \${peer} \${upto}\\n\`);
    queue.acknowledge(peer, upto);
    process.stdout.write(\`A \${peer} \${upto}\\n\`);
  }
}
`;

interface PeerModel {
  /** seq -> counter written into the payload, for every enqueue the child reported. */
  reported: Map<number, number>;
  /** Highest ack the child started (may or may not have committed). */
  ackIntent: number;
  /** Highest ack the child reported done. */
  ackDone: number;
}

/** Runs the child until it reported `lines` enqueues, then SIGKILLs it mid-loop. */
async function runAndKill(script: string, path: string, start: number, enqueues: number): Promise<string[]> {
  const child = spawn(process.execPath, [script, path, String(start)], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  const exited = new Promise<NodeJS.Signals | null>((resolveExit) => {
    child.on('exit', (_code, signal) => resolveExit(signal));
  });
  await new Promise<void>((resolveKill, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.split('\nE ').length > enqueues && child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        resolveKill();
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('exit', (code) => reject(new Error(`child exited early (${code}): ${stderr}`)));
  });
  expect(await exited).toBe('SIGKILL');
  children.delete(child);
  // The last line may be cut off by the kill: only complete lines count.
  return stdout.slice(0, stdout.lastIndexOf('\n')).split('\n');
}

describe('durable queue: crash safety', () => {
  it('every enqueue reported before SIGKILL is there after reopening, in order, once; seqs continue', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nearmesh-queue-crash-'));
    directories.push(dir);
    const script = join(dir, 'child.mjs');
    writeFileSync(script, CHILD);
    const path = join(dir, 'queue.db');
    const model = new Map<string, PeerModel>(
      PEERS.map((peer) => [peer, { reported: new Map(), ackIntent: 0, ackDone: 0 }]),
    );
    let counter = 0;
    let totalReported = 0;
    for (let round = 0; round < 3; round++) {
      const lines = await runAndKill(script, path, counter, 200 + round * 97);
      expect(lines[0]).toBe('ready');
      for (const line of lines.slice(1)) {
        const [kind, peer, seqText, counterText] = line.split(' ');
        const state = model.get(peer!)!;
        const seq = Number(seqText);
        if (kind === 'E') {
          expect(state.reported.has(seq)).toBe(false);
          state.reported.set(seq, Number(counterText));
          counter = Number(counterText) + 1;
          totalReported++;
        } else if (kind === 'I') state.ackIntent = Math.max(state.ackIntent, seq);
        else if (kind === 'A') state.ackDone = Math.max(state.ackDone, seq);
        else throw new Error(`unexpected line ${line}`);
      }
      // A message enqueued but not yet reported may be there too: the next child starts after it.
      counter += 1;

      const queue = await DurableQueue.open(path);
      try {
        let unreported = 0;
        for (const [peer, state] of model) {
          const pending = queue.pending(peer, { limit: 1_000_000 });
          const seqs = pending.map((message) => message.seq);
          // Strictly increasing: in order, none twice.
          for (let i = 1; i < seqs.length; i++) expect(seqs[i]!).toBeGreaterThan(seqs[i - 1]!);
          const present = new Set(seqs);
          const maxReported = Math.max(0, ...state.reported.keys());
          for (const [seq, written] of state.reported) {
            if (seq > state.ackIntent) expect(present.has(seq), `${peer} seq ${seq} lost`).toBe(true);
            if (seq <= state.ackDone) expect(present.has(seq), `${peer} seq ${seq} acked`).toBe(false);
            const message = pending.find((m) => m.seq === seq);
            if (message !== undefined) {
              expect(new DataView(message.payload.buffer, message.payload.byteOffset).getUint32(0)).toBe(
                written,
              );
            }
          }
          for (const seq of seqs) {
            if (!state.reported.has(seq)) {
              expect(seq).toBe(maxReported + 1);
              unreported++;
              // Counted as reported from now on (its payload counter is unknown: read it back).
              const message = pending.find((m) => m.seq === seq)!;
              state.reported.set(
                seq,
                new DataView(message.payload.buffer, message.payload.byteOffset).getUint32(0),
              );
            }
          }
          const stats = queue.stats(peer);
          expect(stats.messages).toBe(seqs.length);
          expect(stats.bytes).toBe(seqs.length * 1024);
          expect(stats.lastSeq === maxReported || stats.lastSeq === maxReported + 1).toBe(true);
        }
        expect(unreported).toBeLessThanOrEqual(1);
      } finally {
        queue.close();
      }
    }
    console.log(`[messaging] crash test: ${totalReported} enqueues reported over 3 SIGKILLed children`);
  }, 60_000);
});
