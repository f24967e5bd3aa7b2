// The mDNS resolver on a real (virtual) LAN: two network namespaces joined by a veth pair, one agent
// process in each. mDNS multicasts on every interface it sees, so it never runs in the root namespace.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
// Unique per run so parallel runs (and other engineers' labs) never touch each other's namespaces.
const NS_A = `nmtest-${process.pid}-a`;
const NS_B = `nmtest-${process.pid}-b`;
const ADDRESS_A = '10.77.0.1';
const ADDRESS_B = '10.77.0.2';
const ID_A = 'aaaaaaaaaaaaaaaa';
const ID_B = 'bbbbbbbbbbbbbbbb';
const WAIT_MS = 15_000;

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed: ${result.error?.message ?? result.stderr.trim()}`);
  }
}

/** Why this machine cannot run the test, or undefined when it can. */
function whyCannotRun(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux network namespaces';
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces';
  const probe = `nmtest-${process.pid}-probe`;
  const added = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (added.status !== 0)
    return `cannot create a network namespace: ${added.error?.message ?? added.stderr.trim()}`;
  spawnSync('ip', ['netns', 'del', probe]);
  return undefined;
}

function createLan(): void {
  run('ip', ['netns', 'add', NS_A]);
  run('ip', ['netns', 'add', NS_B]);
  // Created inside A with its peer moved straight to B: the root namespace never sees the pair.
  run('ip', ['-n', NS_A, 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth0', 'netns', NS_B]);
  for (const [ns, address] of [
    [NS_A, ADDRESS_A],
    [NS_B, ADDRESS_B],
  ] as const) {
    run('ip', ['-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'veth0']);
    run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    run('ip', ['-n', ns, 'link', 'set', 'veth0', 'up']);
    // No default route in a bare namespace: multicast needs its own.
    run('ip', ['-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', 'veth0']);
  }
}

function deleteLan(): void {
  for (const ns of [NS_A, NS_B]) spawnSync('ip', ['netns', 'del', ns]);
}

/**
 * Node 20 cannot run TypeScript, and a vitest worker cannot enter a namespace: transpile the resolver,
 * the TCP transport and their relative imports to plain ESM in a temp dir that sees our node_modules.
 */
function transpileForChildren(entries: string[]): string {
  const outDir = mkdtempSync(join(tmpdir(), `nearmesh-mdns-${process.pid}-`));
  symlinkSync(join(ROOT, 'node_modules'), join(outDir, 'node_modules'));
  writeFileSync(join(outDir, 'package.json'), '{"type":"module"}\n');
  const pending = entries.map((entry) => join(ROOT, entry));
  const done = new Set<string>();
  while (pending.length > 0) {
    const file = pending.pop();
    if (file === undefined || done.has(file)) continue;
    done.add(file);
    const source = readFileSync(file, 'utf8');
    for (const imported of ts.preProcessFile(source).importedFiles) {
      if (imported.fileName.startsWith('.')) {
        pending.push(resolve(dirname(file), imported.fileName.replace(/\.js$/, '.ts')));
      }
    }
    const output = ts.transpileModule(source, {
      fileName: file,
      compilerOptions: {
        module: ts.ModuleKind.ESNext,
        target: ts.ScriptTarget.ES2022,
        esModuleInterop: true,
      },
    }).outputText;
    const target = join(outDir, relative(ROOT, file)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, output);
  }
  writeFileSync(join(outDir, 'agent.mjs'), CHILD_SCRIPT);
  return outDir;
}

/**
 * One agent's discovery side: a TCP transport plus the mDNS resolver announcing its port, or (mode
 * "rogue") a raw bonjour-service announcement with a bad TXT record. Events go out as JSON lines;
 * commands come in on stdin: "stop", "dial <address>".
 */
const CHILD_SCRIPT = `
import { createInterface } from 'node:readline';
import Bonjour from 'bonjour-service';
import { MdnsResolver } from './transports/wifi/mdns-resolver.js';
import { TcpTransport } from './transports/wifi/tcp-transport.js';

const options = JSON.parse(process.env.NEARMESH_TEST_OPTIONS);
const say = (event) => process.stdout.write(JSON.stringify(event) + '\\n');
let stop;

if (options.mode === 'rogue') {
  const bonjour = new Bonjour({ interface: options.interfaceAddress, bind: '0.0.0.0' }, (e) => say({ event: 'warning', message: String(e) }));
  bonjour.publish({ name: 'rogue', type: 'nearmesh', port: 9, host: 'rogue.local', txt: { id: 'NOT-A-PEER-ID', v: '1' }, probe: false });
  stop = () => new Promise((resolve) => bonjour.unpublishAll(() => bonjour.destroy(resolve)));
  say({ event: 'started' });
} else {
  const transport = new TcpTransport({ listen: { host: '0.0.0.0', port: 0 } });
  transport.on('link', (link) => link.on('frame', (frame) => say({ event: 'frame', text: Buffer.from(frame).toString() })));
  await transport.start();
  const resolver = new MdnsResolver({ ...options, port: transport.address().port });
  for (const event of ['found', 'lost']) resolver.on(event, (candidate) => say({ event, candidate }));
  resolver.on('warning', (error) => say({ event: 'warning', code: error.code, message: error.message }));
  await resolver.start();
  stop = async () => { await resolver.stop(); await transport.stop(); };
  say({ event: 'started', port: transport.address().port, instanceName: resolver.instanceName });
  globalThis.dial = async (address) => {
    try {
      const link = await transport.dial(address, { timeoutMs: 3000 });
      link.send(Buffer.from('hello from ' + options.name));
      await link.drained();
      say({ event: 'dialed', address });
    } catch (error) {
      say({ event: 'dial-failed', address, message: error.message });
    }
  };
}

for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'stop') { await stop(); say({ event: 'stopped' }); process.exit(0); }
  if (line.startsWith('dial ')) globalThis.dial(line.slice(5));
}
`;

interface ChildEvent {
  event: string;
  candidate?: { medium: string; address: string; peerId?: string; name?: string; source: string };
  code?: string;
  message?: string;
  port?: number;
  text?: string;
  address?: string;
}

class AgentProcess {
  readonly events: ChildEvent[] = [];
  readonly #child: ChildProcess;
  #stderr = '';

  constructor(outDir: string, namespace: string, options: Record<string, unknown>) {
    this.#child = spawn('ip', ['netns', 'exec', namespace, process.execPath, join(outDir, 'agent.mjs')], {
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

const cannotRun = whyCannotRun();

if (cannotRun !== undefined) {
  if (process.env.CI === 'true') {
    it('runs the mDNS resolver in network namespaces (required on CI)', () => {
      throw new Error(`the mDNS system test cannot run on this CI machine: ${cannotRun}`);
    });
  } else {
    console.warn(
      `\n${'!'.repeat(72)}\n!! SKIPPING test/system/mdns-resolver.test.ts: ${cannotRun}\n${'!'.repeat(72)}\n`,
    );
    it.skip(`mDNS resolver in network namespaces (${cannotRun})`, () => undefined);
  }
} else {
  describe('MdnsResolver between two network namespaces', () => {
    let outDir = '';
    const agents: AgentProcess[] = [];

    beforeAll(() => {
      deleteLan();
      createLan();
      outDir = transpileForChildren(['transports/wifi/mdns-resolver.ts', 'transports/wifi/tcp-transport.ts']);
    });

    afterEach(async () => {
      await Promise.all(agents.splice(0).map((agent) => agent.stop()));
    });

    afterAll(() => {
      deleteLan();
      if (outDir !== '') rmSync(outDir, { recursive: true, force: true });
    });

    const startAgent = (namespace: string, options: Record<string, unknown>): AgentProcess => {
      const agent = new AgentProcess(outDir, namespace, options);
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
      expect((await bravo.waitFor((e) => e.event === 'frame', 'frame at bravo')).text).toBe(
        'hello from alpha',
      );

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
}
