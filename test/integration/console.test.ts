import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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
import { mosquittoPasswdHash } from '../support/password.js';
import { SerialLine, Terminal } from '../support/serial-line.js';
import { until } from '../support/until.js';

function occurrences(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

const PASSWORD = 'open sesame';
const meshKey = generateMeshKey();
const dir = temporaryDir('nearmesh-console-');
const line = new SerialLine(dir);
const greetScript = join(dir, 'greet.sh');
let alpha: AgentProcess;
let bravo: AgentProcess;
let bravoId = '';

describe('console', () => {
  let terminal: Terminal;

  /** `login` on the serial console, the password typed at its prompt; the password is never echoed. */
  async function logIn(): Promise<void> {
    const mark = terminal.mark();
    await terminal.type('login\r');
    await terminal.waitFor('the password prompt', mark, (out) => out.includes('password: '));
    await terminal.type(`${PASSWORD}\r`);
    await terminal.waitFor('the login', mark, (out) => out.includes('logged in'));
    expect(terminal.since(mark)).not.toContain(PASSWORD);
  }

  beforeAll(async () => {
    await line.open();
    terminal = new Terminal(line.testEnd);
    writeFileSync(greetScript, `#!/bin/sh\nargs=$(cat); printf '{"hello":%s}' "$args"\n`);
    chmodSync(greetScript, 0o755);
    const [alphaPort, bravoPort] = (await freePorts(2)) as [number, number];
    [alpha, bravo] = await Promise.all([
      startAgent({
        name: 'alpha',
        meshKey,
        port: alphaPort,
        peers: [`127.0.0.1:${bravoPort}`],
        consoleSerial: line.agentEnd,
        consoleLines: [`password = ${JSON.stringify(mosquittoPasswdHash(PASSWORD))}`],
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
    await line.close();
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
    await terminal.type('send bravo hi\r');
    await terminal.waitFor('the refusal', mark, (out) => out.includes('nearmesh: log in first: type login'));
    await logIn();

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
    await line.close();
    await until('the agent noticing', () => alpha.output.includes('went away'));
    await line.open();
    terminal = new Terminal(line.testEnd);
    await terminal.waitFor('a new banner', 0, (text) => text.includes('nearmesh console: alpha'), 10_000);
    const mark = terminal.mark();
    await terminal.type('status\r');
    const text = await terminal.waitFor('the status', mark, (out) => out.includes('socket '));
    expect(text).toMatch(/name {6}alpha/);
    // A new session: logged out again.
    const refusedMark = terminal.mark();
    await terminal.type('log level info\r');
    await terminal.waitFor('the refusal', refusedMark, (out) => out.includes('nearmesh: log in first'));
  }, 20_000);

  it('serves the same commands through the control socket, without login: nearmesh console', async () => {
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
      /^nearmesh: unknown log level/,
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
    await logIn();
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
