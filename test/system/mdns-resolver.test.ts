// The mDNS resolver on a real (virtual) LAN: two network namespaces joined by a veth pair, one child
// process in each. mDNS multicasts on every interface it sees, so it never runs in the root namespace.
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { describeWithNetns, VethLan } from '../support/netns.js';

const CHILD = join(import.meta.dirname, 'children', 'mdns-child.mjs');
const ID_A = 'aaaaaaaaaaaaaaaa';
const ID_B = 'bbbbbbbbbbbbbbbb';
const WAIT_MS = 15_000;
const lan = new VethLan('mdns', 0);
const NS_A = lan.a;
const NS_B = lan.b;
const ADDRESS_A = lan.addressA;
const ADDRESS_B = lan.addressB;

interface ChildEvent {
  event: string;
  candidate?: { medium: string; address: string; peerId?: string; name?: string; source: string };
  code?: string;
  message?: string;
  port?: number;
  text?: string;
  address?: string;
}

class ResolverProcess {
  readonly events: ChildEvent[] = [];
  readonly #child: ChildProcess;
  #stderr = '';

  constructor(namespace: string, options: Record<string, unknown>) {
    this.#child = spawn('ip', ['netns', 'exec', namespace, process.execPath, CHILD], {
      env: { ...process.env, NEARMESH_TEST_OPTIONS: JSON.stringify(options) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.#child.stderr?.on('data', (chunk: Buffer) => {
      this.#stderr += chunk.toString();
    });
    if (this.#child.stdout) {
      createInterface({ input: this.#child.stdout }).on('line', (line) => this.events.push(JSON.parse(line)));
    }
  }

  command(line: string): void {
    this.#child.stdin?.write(`${line}\n`);
  }

  async waitFor(isWanted: (event: ChildEvent) => boolean, what: string): Promise<ChildEvent> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const event = this.events.find(isWanted);
      if (event !== undefined) return event;
      if (Date.now() > deadline || this.#child.exitCode !== null) {
        throw new Error(`no ${what}; events: ${JSON.stringify(this.events)}; stderr: ${this.#stderr}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null) return;
    const exited = new Promise((r) => this.#child.once('exit', r));
    this.command('stop');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}

describeWithNetns('MdnsResolver between two network namespaces', () => {
  const agents: ResolverProcess[] = [];

  beforeAll(() => lan.create());

  afterEach(async () => {
    await Promise.all(agents.splice(0).map((agent) => agent.stop()));
  });

  afterAll(() => lan.delete());

  const startAgent = (namespace: string, options: Record<string, unknown>): ResolverProcess => {
    const agent = new ResolverProcess(namespace, options);
    agents.push(agent);
    return agent;
  };

  it('finds the other agent with its peer id and a dialable address, never itself, and loses it on goodbye', async () => {
    // A names its interface; B relies on the default (every interface): both must work.
    const alpha = startAgent(NS_A, { peerId: ID_A, name: 'alpha', interfaceAddress: ADDRESS_A });
    const bravo = startAgent(NS_B, { peerId: ID_B, name: 'bravo' });
    const bravoPort = (await bravo.waitFor((e) => e.event === 'started', 'start of bravo')).port;
    const alphaPort = (await alpha.waitFor((e) => e.event === 'started', 'start of alpha')).port;

    const atAlpha = await alpha.waitFor((e) => e.event === 'found', 'bravo found by alpha');
    expect(atAlpha.candidate).toEqual({
      medium: 'wifi',
      address: `${ADDRESS_B}:${bravoPort}`,
      peerId: ID_B,
      name: 'bravo',
      source: 'mdns',
    });
    const atBravo = await bravo.waitFor((e) => e.event === 'found', 'alpha found by bravo');
    expect(atBravo.candidate?.address).toBe(`${ADDRESS_A}:${alphaPort}`);
    expect(atBravo.candidate?.peerId).toBe(ID_A);

    // The candidate is what the TCP transport dials.
    alpha.command(`dial ${atAlpha.candidate?.address}`);
    await alpha.waitFor((e) => e.event === 'dialed', 'dial from alpha to bravo');
    expect((await bravo.waitFor((e) => e.event === 'frame', 'frame at bravo')).text).toBe('hello from alpha');

    expect(alpha.events.some((e) => e.candidate?.peerId === ID_A)).toBe(false);
    expect(bravo.events.some((e) => e.candidate?.peerId === ID_B)).toBe(false);
    expect(alpha.events.filter((e) => e.event === 'warning')).toEqual([]);

    await bravo.stop();
    const lost = await alpha.waitFor((e) => e.event === 'lost', 'bravo lost by alpha');
    expect(lost.candidate).toEqual(atAlpha.candidate);
  });

  it('turns multicast trouble into warnings, not a crash: an interface address this host lacks', async () => {
    const lonely = startAgent(NS_A, { peerId: ID_A, name: 'lonely', interfaceAddress: '10.99.0.1' });
    await lonely.waitFor((e) => e.event === 'started', 'start despite the bad interface');
    const warning = await lonely.waitFor((e) => e.event === 'warning', 'a warning about the interface');
    expect(warning.message).toMatch(/EADDRNOTAVAIL|EINVAL|ENODEV/);
    await lonely.stop();
    expect(lonely.events.at(-1)?.event).toBe('stopped');
  });

  it('ignores a malformed announcement and warns about it once', async () => {
    const alpha = startAgent(NS_A, { peerId: ID_A, name: 'alpha', interfaceAddress: ADDRESS_A });
    await alpha.waitFor((e) => e.event === 'started', 'start of alpha');
    const rogue = startAgent(NS_B, { mode: 'rogue', interfaceAddress: ADDRESS_B });
    await rogue.waitFor((e) => e.event === 'started', 'start of rogue');
    const warning = await alpha.waitFor((e) => e.event === 'warning', 'warning about the rogue record');
    expect(warning.code).toBe('mdns-malformed');
    expect(warning.message).toContain('rogue');
    // bonjour-service re-announces after 1 s and 3 s: still only one warning, never a candidate.
    await new Promise((r) => setTimeout(r, 3500));
    expect(alpha.events.filter((e) => e.event === 'warning')).toHaveLength(1);
    expect(alpha.events.some((e) => e.event === 'found')).toBe(false);
  });
});
