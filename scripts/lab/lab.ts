// The network-namespace lab: one namespace per topology node, one veth pair per link (created inside one
// namespace with its peer moved straight to the other, so the root namespace never sees it), each link
// its own /30 from 10.78.0.0/16, shaped with tc tbf (rate) and an nftables drop rule (loss).
// Namespaces are named nml-<label>-<node>; the veth inside node A towards node B is v<index of B>.
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { NearmeshError } from '../../agent/core/errors.js';
import { type Topology, validateTopology } from './topology.js';

/** A lab command failed, or a lab was asked about nodes or links it does not have. */
export class LabError extends NearmeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('lab', message, options);
  }
}

/** How every link is shaped at create(); both directions get the same. */
export interface LinkShape {
  /** tc tbf rate in Mbit/s; absent leaves the link unshaped. */
  readonly rateMbit?: number;
  /** Percent (integer 0..100) of packets dropped on arrival, in each direction. */
  readonly lossPercent?: number;
}

/** A node's neighbour and the neighbour's address on the link they share. */
export interface Neighbour {
  readonly node: string;
  readonly address: string;
}

/** What the kernel says about a link (read at one end; the lab shapes both ends alike). */
export interface LinkStatus {
  readonly up: boolean;
  readonly lossPercent: number;
  /** tbf rate as tc prints it ("10Mbit"), or undefined when unshaped. */
  readonly rate: string | undefined;
}

interface LinkEnd {
  readonly node: string;
  readonly namespace: string;
  /** The veth's name inside this end's namespace. */
  readonly veth: string;
  readonly address: string;
}

interface Link {
  readonly ends: readonly [LinkEnd, LinkEnd];
}

const NAMESPACE_PREFIX = 'nml-';
/** No dashes: "nml-<label>-" then never prefixes another label's namespaces. */
const LABEL = /^[a-z0-9]{1,12}$/;
const NFT_TABLE = 'nmlab';
/** Each link a /30: 64 links per 10.78.X.0/24. */
const LINKS_PER_OCTET = 64;
/** tbf queue bound: how long a packet may wait for tokens before tbf drops it. */
const TBF_LATENCY = '100ms';

function run(command: string, args: string[], input?: string): string {
  const result = spawnSync(command, args, { encoding: 'utf8', input });
  if (result.status !== 0) {
    const reason = result.error?.message ?? (result.stderr.trim() || `exit status ${result.status}`);
    throw new LabError(`${command} ${args.join(' ')} failed: ${reason}`);
  }
  return result.stdout;
}

function checkLabel(label: string): void {
  if (!LABEL.test(label))
    throw new LabError(`lab label "${label}" must be 1..12 lowercase letters or digits`);
}

function checkLossPercent(percent: number): void {
  if (!Number.isInteger(percent) || percent < 0 || percent > 100)
    throw new LabError(`loss must be an integer percent from 0 to 100, got ${percent}`);
}

function rateKbit(rateMbit: number): number {
  const kbit = Math.round(rateMbit * 1000);
  if (!Number.isFinite(kbit) || kbit < 8 || kbit > 100_000_000)
    throw new LabError(`rate must be from 0.008 to 100000 Mbit/s, got ${rateMbit}`);
  return kbit;
}

/** Every namespace in the system whose name starts with `prefix`. */
function namespacesStartingWith(prefix: string): string[] {
  // `ip netns list` prints "name" or "name (id: N)", one a line.
  return run('ip', ['netns', 'list'])
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => name.startsWith(prefix));
}

/** Labels of labs that have namespaces on this machine (whoever created them). */
export function labelsInUse(): string[] {
  const labels = namespacesStartingWith(NAMESPACE_PREFIX).map((name) => name.split('-')[1] ?? '');
  return [...new Set(labels)].filter((label) => label !== '').sort();
}

/**
 * Deletes every namespace of the lab `label`. A namespace with processes still inside lives on, unnamed,
 * until they exit: stop the agents first.
 */
export function deleteLabNamespaces(label: string): void {
  checkLabel(label);
  for (const namespace of namespacesStartingWith(`${NAMESPACE_PREFIX}${label}-`))
    spawnSync('ip', ['netns', 'del', namespace]);
}

export class Lab {
  readonly #links: Link[];
  /** Namespaces whose nftables loss table is installed (on the first loss asked for). */
  readonly #lossTables = new Set<string>();

  /** `label` keeps parallel labs apart: tests use one with process.pid in it. */
  constructor(
    readonly topology: Topology,
    readonly label: string,
    readonly shape: LinkShape = {},
  ) {
    checkLabel(label);
    validateTopology(topology);
    if (shape.lossPercent !== undefined) checkLossPercent(shape.lossPercent);
    if (shape.rateMbit !== undefined) rateKbit(shape.rateMbit);
    const maxLinks = 256 * LINKS_PER_OCTET;
    if (topology.edges.length > maxLinks)
      throw new LabError(`at most ${maxLinks} links, got ${topology.edges.length}`);
    this.#links = topology.edges.map(([a, b], index) => {
      const subnet = `10.78.${Math.floor(index / LINKS_PER_OCTET)}`;
      const base = (index % LINKS_PER_OCTET) * 4;
      const end = (node: string, other: string, host: number): LinkEnd => ({
        node,
        namespace: this.namespaceOf(node),
        veth: `v${topology.nodes.indexOf(other) + 1}`,
        address: `${subnet}.${base + host}`,
      });
      return { ends: [end(a, b, 1), end(b, a, 2)] };
    });
  }

  namespaceOf(node: string): string {
    if (!this.topology.nodes.includes(node)) throw new LabError(`lab ${this.label} has no node "${node}"`);
    return `${NAMESPACE_PREFIX}${this.label}-${node}`;
  }

  /** Builds every namespace and link; on any failure removes what it built and rethrows. */
  create(): void {
    this.destroy();
    try {
      for (const node of this.topology.nodes) {
        run('ip', ['netns', 'add', this.namespaceOf(node)]);
        run('ip', ['-n', this.namespaceOf(node), 'link', 'set', 'lo', 'up']);
      }
      for (const { ends } of this.#links) {
        const [a, b] = ends;
        run('ip', [
          '-n',
          a.namespace,
          'link',
          'add',
          a.veth,
          'type',
          'veth',
          'peer',
          'name',
          b.veth,
          'netns',
          b.namespace,
        ]);
        for (const end of ends) {
          run('ip', ['-n', end.namespace, 'addr', 'add', `${end.address}/30`, 'dev', end.veth]);
          run('ip', ['-n', end.namespace, 'link', 'set', end.veth, 'up']);
          if (this.shape.rateMbit !== undefined) this.#shapeRate(end, this.shape.rateMbit);
        }
      }
      // nftables only where loss is asked for: a lab without loss runs on a machine without nft.
      if ((this.shape.lossPercent ?? 0) > 0)
        for (const node of this.topology.nodes) this.#installLossTable(node);
      this.#waitUntilUp(this.#links.flatMap(({ ends }) => ends));
    } catch (error) {
      this.destroy();
      throw error;
    }
  }

  /** Removes every namespace of this lab (idempotent; also clears leftovers of an earlier run). */
  destroy(): void {
    deleteLabNamespaces(this.label);
  }

  /** The node's neighbours with their addresses on the shared links. */
  neighbours(node: string): Neighbour[] {
    this.namespaceOf(node);
    return this.#links.flatMap(({ ends: [a, b] }) => {
      if (a.node === node) return [{ node: b.node, address: b.address }];
      if (b.node === node) return [{ node: a.node, address: a.address }];
      return [];
    });
  }

  /** `node`'s address on its link to `neighbour`. */
  addressOf(node: string, neighbour: string): string {
    return this.#end(node, neighbour).address;
  }

  /** The veth's name inside `node`'s namespace on its link to `neighbour`. */
  vethOf(node: string, neighbour: string): string {
    return this.#end(node, neighbour).veth;
  }

  /** Static peers for `node`'s agent ("host:port" of each neighbour's agent): agents link only to neighbours. */
  peerAddresses(node: string, port: number): string[] {
    return this.neighbours(node).map((neighbour) => `${neighbour.address}:${port}`);
  }

  /** Takes the link down at both ends: connections across it fail until restore(). */
  cut(a: string, b: string): void {
    for (const end of this.#link(a, b).ends)
      run('ip', ['-n', end.namespace, 'link', 'set', end.veth, 'down']);
  }

  /** Brings the link back up and returns once the kernel passes traffic over it again. */
  restore(a: string, b: string): void {
    const { ends } = this.#link(a, b);
    for (const end of ends) run('ip', ['-n', end.namespace, 'link', 'set', end.veth, 'up']);
    this.#waitUntilUp(ends);
  }

  /** Drops `percent` of packets arriving at either end of the link (0 turns loss off). */
  setLoss(a: string, b: string, percent: number): void {
    checkLossPercent(percent);
    const { ends } = this.#link(a, b);
    if (percent === 0 && !ends.some((end) => this.#lossTables.has(end.namespace))) return;
    for (const end of ends) if (!this.#lossTables.has(end.namespace)) this.#installLossTable(end.node);
    for (const end of ends) {
      const rules = [`flush chain inet ${NFT_TABLE} ${lossChain(end)}`];
      if (percent > 0) rules.push(`add rule inet ${NFT_TABLE} ${lossChain(end)} ${lossRule(percent)}`);
      run('ip', ['netns', 'exec', end.namespace, 'nft', '-f', '-'], `${rules.join('\n')}\n`);
    }
  }

  /** Shapes both directions of the link to `rateMbit`; undefined removes the shaping. */
  setRate(a: string, b: string, rateMbit: number | undefined): void {
    for (const end of this.#link(a, b).ends) {
      if (rateMbit !== undefined) this.#shapeRate(end, rateMbit);
      // Deleting a qdisc that is not there fails; unshaped is what was asked for either way.
      else spawnSync('tc', ['-n', end.namespace, 'qdisc', 'del', 'dev', end.veth, 'root']);
    }
  }

  linkStatus(a: string, b: string): LinkStatus {
    const end = this.#end(a, b);
    const link = run('ip', ['-n', end.namespace, '-o', 'link', 'show', 'dev', end.veth]);
    const flags = /<([^>]*)>/.exec(link)?.[1]?.split(',') ?? [];
    const chain = !this.#lossTables.has(end.namespace)
      ? ''
      : run('ip', [
          'netns',
          'exec',
          end.namespace,
          'nft',
          'list',
          'chain',
          'inet',
          NFT_TABLE,
          lossChain(end),
        ]);
    const qdisc = run('tc', ['-n', end.namespace, 'qdisc', 'show', 'dev', end.veth, 'root']);
    return {
      up: flags.includes('UP'),
      lossPercent: Number(/mod 100 < (\d+)/.exec(chain)?.[1] ?? 0),
      rate: /^qdisc tbf .* rate (\S+)/m.exec(qdisc)?.[1],
    };
  }

  /** Runs a command inside `node`'s namespace (`ip netns exec`), synchronously. */
  exec(
    node: string,
    command: string,
    args: string[],
    options: { input?: string; timeoutMs?: number } = {},
  ): SpawnSyncReturns<string> {
    return spawnSync('ip', ['netns', 'exec', this.namespaceOf(node), command, ...args], {
      encoding: 'utf8',
      input: options.input,
      timeout: options.timeoutMs ?? 30_000,
    });
  }

  /** Whether a TCP connection from inside `node` to host:port is accepted within timeoutMs. */
  tcpReachable(node: string, host: string, port: number, timeoutMs = 2_000): boolean {
    const script =
      "const [host, port, ms] = process.argv.slice(1); const s = require('node:net').connect(" +
      '{ host, port: Number(port), timeout: Number(ms) });' +
      "s.on('connect', () => process.exit(0)); s.on('error', () => process.exit(1)); s.on('timeout', () => process.exit(2));";
    const result = this.exec(node, process.execPath, ['-e', script, host, String(port), String(timeoutMs)], {
      timeoutMs: timeoutMs + 5_000,
    });
    return result.status === 0;
  }

  /**
   * The kernel reports carrier on a fresh or re-enabled veth up to a second later (linkwatch), and drops
   * what is sent before: wait for operstate UP so callers can use a link as soon as we return.
   */
  #waitUntilUp(ends: readonly LinkEnd[], timeoutMs = 5_000): void {
    const deadline = Date.now() + timeoutMs;
    for (const end of ends) {
      for (;;) {
        const link = run('ip', ['-n', end.namespace, '-o', 'link', 'show', 'dev', end.veth]);
        if (/ state UP /.test(link)) break;
        if (Date.now() > deadline)
          throw new LabError(`${end.veth} in ${end.namespace} did not come up within ${timeoutMs} ms`);
        sleepSync(50);
      }
    }
  }

  #shapeRate(end: LinkEnd, rateMbit: number): void {
    const kbit = rateKbit(rateMbit);
    // tbf needs a bucket of at least one full frame plus what arrives per timer tick: 10 ms of rate covers it.
    const burstBytes = Math.max(Math.ceil((kbit * 1000) / 8 / 100), 16_000);
    run('tc', [
      '-n',
      end.namespace,
      'qdisc',
      'replace',
      'dev',
      end.veth,
      'root',
      'tbf',
      'rate',
      `${kbit}kbit`,
      'burst',
      String(burstBytes),
      'latency',
      TBF_LATENCY,
    ]);
  }

  /** One nftables table per namespace: an input chain jumping to one loss chain per veth. */
  #installLossTable(node: string): void {
    const ends = this.#links.flatMap(({ ends }) => ends.filter((end) => end.node === node));
    const loss = this.shape.lossPercent ?? 0;
    // Chains must be declared before the rules that jump to them.
    const ruleset = [
      `table inet ${NFT_TABLE} {`,
      ...ends.map((end) => `  chain ${lossChain(end)} {\n${loss > 0 ? `    ${lossRule(loss)}\n` : ''}  }`),
      '  chain input {',
      '    type filter hook input priority 0; policy accept;',
      ...ends.map((end) => `    iifname "${end.veth}" jump ${lossChain(end)}`),
      '  }',
      '}',
    ];
    run('ip', ['netns', 'exec', this.namespaceOf(node), 'nft', '-f', '-'], `${ruleset.join('\n')}\n`);
    this.#lossTables.add(this.namespaceOf(node));
  }

  #link(a: string, b: string): Link {
    this.namespaceOf(a);
    this.namespaceOf(b);
    const link = this.#links.find(
      ({ ends: [x, y] }) => (x.node === a && y.node === b) || (x.node === b && y.node === a),
    );
    if (link === undefined) throw new LabError(`${a} and ${b} are not neighbours in lab ${this.label}`);
    return link;
  }

  #end(node: string, neighbour: string): LinkEnd {
    const end = this.#link(node, neighbour).ends.find((candidate) => candidate.node === node);
    if (end === undefined) throw new LabError(`${node} is not on the link ${node}-${neighbour}`);
    return end;
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function lossChain(end: LinkEnd): string {
  return `loss_${end.veth}`;
}

function lossRule(percent: number): string {
  return `numgen random mod 100 < ${percent} drop`;
}
