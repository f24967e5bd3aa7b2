// The console as a person at a serial terminal meets it: a socat pty pair stands in for the serial
// line (the agent opens one end as `[console] serial`, the test types into the other one key per
// write); history, completion and the reconnect when the device goes away and comes back. Then the
// same command table through the control socket: `nearmesh console`. Then `call` (an exec action on the
// other agent, its name tab-completed) and `trace` (live frames of the link, stopped by time or Ctrl-C).
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, constants, existsSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReadStream } from 'node:tty';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateMeshKey } from '../../agent/config/mesh-key.js';
import type { PeerInfo } from '../../agent/links/peer-directory.js';
import {
  type AgentProcess,
  freePorts,
  startAgent,
  startLive,
  stopAllAgents,
  temporaryDir,
} from '../support/agent-process.js';
import { until } from '../support/until.js';

/** The test's end of the serial line: a plain pty opened read-write, typed into one byte per write. */
class Terminal {
  output = '';
  readonly #fd: number;
  readonly #stream: ReadStream;

  constructor(path: string) {
    this.#fd = openSync(path, constants.O_RDWR | constants.O_NOCTTY);
    this.#stream = new ReadStream(this.#fd);
    this.#stream.on('data', (chunk: Buffer) => {
      this.output += chunk.toString('utf8');
    });
    this.#stream.on('error', () => {});
  }

  /** Everything printed from now on, for `since`. */
  mark(): number {
    return this.output.length;
  }

  since(mark: number): string {
    return this.output.slice(mark);
  }

  async type(text: string): Promise<void> {
    for (const byte of Buffer.from(text, 'utf8')) {
      // Kept: pacing. readline takes a tab that arrives in one read with other keys for pasted text, not
      // completion; a busy machine can merge bytes written 3 ms apart, so a tab gets a quiet moment on each side.
      const isTab = byte === 0x09;
      if (isTab) await sleep(100);
      writeSync(this.#fd, Buffer.from([byte]));
      await sleep(isTab ? 100 : 3);
    }
  }

  waitFor(what: string, mark: number, test: (text: string) => boolean, timeoutMs = 8000): Promise<string> {
    return until(
      () => `${what} on the serial console; it printed ${JSON.stringify(this.since(mark))}`,
      () => {
        const text = this.since(mark);
        return test(text) ? text : undefined;
      },
      { timeoutMs, intervalMs: 20 },
    );
  }

  close(): void {
    this.#stream.destroy();
  }
}

function occurrences(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

const meshKey = generateMeshKey();
const dir = temporaryDir('nearmesh-console-');
const agentEnd = join(dir, 'a');
const greetScript = join(dir, 'greet.sh');
const testEnd = join(dir, 'b');
let socat: ChildProcess | undefined;
let alpha: AgentProcess;
let bravo: AgentProcess;
let bravoId = '';

async function startSocat(): Promise<ChildProcess> {
  const child = spawn(
    'socat',
    ['-d', '-d', `pty,raw,echo=0,link=${agentEnd}`, `pty,raw,echo=0,link=${testEnd}`],
    { stdio: ['ignore', 'ignore', 'ignore'] },
  );
  await until('socat pty pair', () => existsSync(agentEnd) && existsSync(testEnd));
  return child;
}

async function stopSocat(): Promise<void> {
  const child = socat;
  socat = undefined;
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

describe('console', () => {
  let terminal: Terminal;

  beforeAll(async () => {
    socat = await startSocat();
    terminal = new Terminal(testEnd);
    writeFileSync(greetScript, `#!/bin/sh\nargs=$(cat); printf '{"hello":%s}' "$args"\n`);
    chmodSync(greetScript, 0o755);
    const [alphaPort, bravoPort] = (await freePorts(2)) as [number, number];
    [alpha, bravo] = await Promise.all([
      startAgent({
        name: 'alpha',
        meshKey,
        port: alphaPort,
        peers: [`127.0.0.1:${bravoPort}`],
        consoleSerial: agentEnd,
      }),
      startAgent({
        name: 'bravo',
        meshKey,
        port: bravoPort,
        peers: [`127.0.0.1:${alphaPort}`],
        extraToml: ['[[actions]]', 'name = "greet"', `exec = [${JSON.stringify(greetScript)}]`].join('\n'),
      }),
    ]);
    bravoId = (await bravo.json<{ id: string }>(['id'])).id;
    await until('alpha linked to bravo', async () =>
      (await alpha.json<PeerInfo[]>(['peers'])).some((peer) => peer.state === 'connected'),
    );
  }, 30_000);

  afterAll(async () => {
    terminal?.close();
    await stopSocat();
    await stopAllAgents();
  });

  it('greets on the serial line and runs peers typed one key at a time, in CRLF lines', async () => {
    await terminal.waitFor('the banner', 0, (text) => text.includes('nearmesh console: alpha'));
    expect(terminal.output).toContain('nearmesh> ');
    const mark = terminal.mark();
    await terminal.type('peers\r');
    const text = await terminal.waitFor('the peer table', mark, (out) => out.includes('bravo'));
    expect(text).toContain('peers');
    expect(text).toMatch(/LAST SEEN\r\n/);
    expect(text).toContain(bravoId);
    expect(text).toContain('connected');
  }, 15_000);

  it('completes command names and peer names, and recalls the last command with up-arrow', async () => {
    let mark = terminal.mark();
    await terminal.type('pe\t');
    await terminal.waitFor('completion to peers', mark, (out) => out.includes('ers'));
    await terminal.type('\r');
    await terminal.waitFor('the peer table', mark, (out) => out.includes(bravoId));

    mark = terminal.mark();
    await terminal.type('\x1b[A');
    await terminal.waitFor('peers recalled', mark, (out) => out.includes('peers'));
    await terminal.type('\r');
    await terminal.waitFor('peers again from history', mark, (out) => occurrences(out, 'LAST SEEN') === 1);

    mark = terminal.mark();
    await terminal.type('send br\t "hi there"\r');
    const sent = await terminal.waitFor('the acknowledgement', mark, (out) => out.includes('acknowledged'));
    expect(sent).toContain('send bravo');
    expect(sent).toContain(`acknowledged by ${bravoId}`);

    mark = terminal.mark();
    await terminal.type('frob\r');
    await terminal.waitFor('the unknown command', mark, (out) =>
      out.includes('unknown command frob (try help)'),
    );
  }, 20_000);

  it('reopens the device when it goes away and comes back', async () => {
    terminal.close();
    await stopSocat();
    await until('the agent noticing', () => alpha.output.includes('went away'));
    socat = await startSocat();
    terminal = new Terminal(testEnd);
    await terminal.waitFor('a new banner', 0, (text) => text.includes('nearmesh console: alpha'), 10_000);
    const mark = terminal.mark();
    await terminal.type('status\r');
    const text = await terminal.waitFor('the status', mark, (out) => out.includes('socket '));
    expect(text).toMatch(/name {6}alpha/);
  }, 20_000);

  it('serves the same commands through the control socket: nearmesh console', async () => {
    const normalize = (text: string): string =>
      text
        .replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, 'TIME')
        .replace(/[\d.]+ ms/g, 'N ms')
        .replace(/ +/g, ' ');
    const viaConsole = await alpha.cli(['console', '-e', 'peers']);
    const viaPeers = await alpha.cli(['peers']);
    expect(viaConsole.stderr).toBe('');
    expect(viaConsole.code).toBe(0);
    expect(normalize(viaConsole.stdout)).toBe(normalize(viaPeers.stdout));

    const level = await alpha.cli(['console', '-e', 'log level warn']);
    expect(level.stdout).toBe('log level warn\n');
    expect((await alpha.cli(['console', '-e', 'log level'])).stdout).toBe('log level warn\n');
    expect((await alpha.cli(['console', '-e', 'log level loud'])).stdout).toMatch(
      /^error: unknown log level/,
    );

    const piped = await alpha.cli(['console'], 10_000, Buffer.from('links\nhelp send\n'));
    expect(piped.code).toBe(0);
    expect(piped.stdout).toContain('bravo');
    expect(piped.stdout).toContain('send <peer> <text...>');
  }, 20_000);
  it('calls an action on the other agent, its name tab-completed, and prints the call table', async () => {
    await until('bravo announcing greet', async () =>
      (await alpha.json<Array<{ action: string }>>(['actions'])).some((row) => row.action === 'greet'),
    );
    const mark = terminal.mark();
    await terminal.type('call bravo gr\t {"who": "console"}\r');
    const text = await terminal.waitFor('the call result', mark, (out) => out.includes('hello'), 15_000);
    expect(text).toContain('call bravo greet {"who": "console"}');
    expect(text).toMatch(/PEER +NAME +STATUS +RESULT +FIRED AT\r\n/);
    expect(text).toContain(bravoId);
    expect(text).toMatch(/bravo +ok +\{"hello":\{"who":"console"\}\}/);

    const viaCli = await alpha.cli(['call', 'bravo', 'greet', '{"who":"cli"}']);
    expect(viaCli.stdout).toMatch(/bravo +ok +\{"hello":\{"who":"cli"\}\}/);
  }, 30_000);

  it('traces the link to bravo for 2 s: decoded frames, never the payload, then how many it showed', async () => {
    const mark = terminal.mark();
    await terminal.type('trace br\t 2\r');
    await terminal.waitFor('the trace starting', mark, (out) => out.includes('tracing bravo'));
    const sent = await alpha.cli(['send', 'bravo', 'zebra-secret']);
    expect(sent.code).toBe(0);
    const text = await terminal.waitFor('the trace ending', mark, (out) => /\d+ frames? shown/.test(out));
    expect(text).toContain(`tracing bravo (${bravoId}) for 2 s`);
    // A reliable message: system DATA carrying QUEUED around the 12 bytes (PROTOCOL.md §17), confirmed by a RECEIVED.
    expect(text).toMatch(/\d\d:\d\d:\d\d\.\d{3} → wifi DATA id=\d+ ack system size=25 queued\r\n/);
    expect(text).toMatch(/← wifi DATA id=\d+ ack system size=\d+ received\r\n/);
    expect(text).toMatch(/← wifi ACK id=\d+\r\n/);
    expect(text).not.toContain('zebra');
    const shown = Number(/(\d+) frames? shown/.exec(text)?.[1]);
    expect(shown).toBe(occurrences(text, ' wifi '));
    await terminal.waitFor('the prompt', mark, (out) => /frames? shown\r\n.*nearmesh> /s.test(out));
  }, 20_000);

  it('stops a trace on Ctrl-C, and the console carries on', async () => {
    let mark = terminal.mark();
    await terminal.type('trace bravo 300\r');
    await terminal.waitFor('the trace starting', mark, (out) => out.includes('tracing bravo'));
    const started = Date.now();
    await terminal.type('\x03');
    await terminal.waitFor('the trace stopping', mark, (out) => /frames? shown/.test(out));
    expect(Date.now() - started).toBeLessThan(3000);
    mark = terminal.mark();
    await terminal.type('links\r');
    await terminal.waitFor('the links', mark, (out) => out.includes(bravoId));
  }, 20_000);

  it('traces through the control socket: nearmesh console -e and nearmesh trace --json', async () => {
    const viaConsole = await alpha.cli(['console', '-e', 'trace bravo 1']);
    expect(viaConsole.code).toBe(0);
    expect(viaConsole.stdout).toMatch(/^tracing bravo \([0-9a-f]+\) for 1 s; Ctrl-C or Enter stops\n/);
    expect(viaConsole.stdout).toMatch(/\d+ frames? shown\n$/);

    // `nearmesh trace` runs until interrupted: started once the agent answered it, ended once it showed the send.
    const tracing = await startLive(alpha, ['trace', 'bravo', '--json'], '"ok":true');
    let traced = '';
    tracing.stdout.on('data', (chunk: Buffer) => {
      traced += chunk.toString();
    });
    const events = () =>
      traced
        .split('\n')
        .slice(0, -1)
        .map((line) => JSON.parse(line) as { type: string; direction: string; peer: string; size?: number });
    const isTheSend = (event: { type: string; direction: string; size?: number }) =>
      event.type === 'DATA' && event.direction === 'out' && event.size === 25;
    try {
      await alpha.cli(['send', 'bravo', 'zebra-secret']);
      await until('the send in the trace', () => events().some(isTheSend));
    } finally {
      tracing.kill('SIGKILL');
    }
    expect(events().every((event) => event.peer === bravoId)).toBe(true);
    expect(traced).not.toContain('zebra');

    const refused = await alpha.cli(['trace', 'nobody']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/no direct link to nobody/);
  }, 20_000);
});
