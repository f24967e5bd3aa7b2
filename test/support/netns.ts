// Network-namespace labs for system tests: a private LAN of veth-joined namespaces that the root
// namespace never sees.
import { spawnSync } from 'node:child_process';
import { describeWhenAvailable } from './requirements.js';

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed: ${result.error?.message ?? result.stderr.trim()}`);
  }
}

/** Why this machine cannot create network namespaces, or undefined when it can. */
export function whyNetnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux network namespaces';
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces';
  const probe = `nmprobe-${process.pid}`;
  const added = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (added.status !== 0)
    return `cannot create a network namespace: ${added.error?.message ?? added.stderr.trim()}`;
  spawnSync('ip', ['netns', 'del', probe]);
  return undefined;
}

/** Why packet loss cannot be set up here (the lab drops packets with nftables), or undefined when it can. */
export function whyNftUnavailable(): string | undefined {
  const probe = spawnSync('nft', ['--version'], { encoding: 'utf8' });
  return probe.status === 0 ? undefined : 'needs nft for packet loss (apt-get install nftables)';
}

/**
 * describe() for tests that need root and network namespaces (see describeWhenAvailable); with `loss`, nft
 * too (only the lab's packet loss uses it).
 */
export function describeWithNetns(title: string, body: () => void, options: { loss?: boolean } = {}): void {
  const missing = whyNetnsUnavailable() ?? (options.loss === true ? whyNftUnavailable() : undefined);
  describeWhenAvailable(title, missing, body);
}

/** Two namespaces joined by one veth pair, 10.77.N.1/24 and 10.77.N.2/24, with multicast routed. */
export class VethLan {
  /**
   * An mDNS-discovering agent on one side: on a listens on every interface (as the defaults do), on b on its
   * LAN address only, so both ways of listening are covered.
   */
  agentSpec(side: 'a' | 'b', name: string, meshKey: string | undefined) {
    return {
      name,
      meshKey,
      port: 7450,
      listenHost: side === 'a' ? '0.0.0.0' : this.addressB,
      discovery: ['mdns'],
      netns: side === 'a' ? this.a : this.b,
    };
  }

  readonly a: string;
  readonly b: string;
  readonly addressA: string;
  readonly addressB: string;

  constructor(label: string, subnet: number) {
    // Unique per process so parallel runs never touch each other's namespaces.
    this.a = `nm${label}-${process.pid}-a`;
    this.b = `nm${label}-${process.pid}-b`;
    this.addressA = `10.77.${subnet}.1`;
    this.addressB = `10.77.${subnet}.2`;
  }

  create(): void {
    this.delete();
    run('ip', ['netns', 'add', this.a]);
    run('ip', ['netns', 'add', this.b]);
    // Created inside A with its peer moved straight to B: the root namespace never sees the pair.
    run('ip', [
      '-n',
      this.a,
      'link',
      'add',
      'veth0',
      'type',
      'veth',
      'peer',
      'name',
      'veth0',
      'netns',
      this.b,
    ]);
    for (const [ns, address] of [
      [this.a, this.addressA],
      [this.b, this.addressB],
    ] as const) {
      run('ip', ['-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'veth0']);
      run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      run('ip', ['-n', ns, 'link', 'set', 'veth0', 'up']);
      // A bare namespace has no default route; multicast (mDNS) needs one of its own.
      run('ip', ['-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', 'veth0']);
    }
  }

  delete(): void {
    for (const ns of [this.a, this.b]) spawnSync('ip', ['netns', 'del', ns]);
  }
}

/**
 * A site of three subnets joined by a router namespace: `subnets[i]` is a namespace on 10.78.(i+1).0/24 at
 * .2, the router at .1 on each, forwarding unicast only (no multicast routing: mDNS stays on its subnet).
 */
export class RoutedSite {
  readonly router: string;
  readonly subnets: { ns: string; address: string }[];

  constructor(label: string, count = 3) {
    this.router = `nm${label}-${process.pid}-r`;
    this.subnets = Array.from({ length: count }, (_, i) => ({
      ns: `nm${label}-${process.pid}-${i + 1}`,
      address: `10.78.${i + 1}.2`,
    }));
  }

  create(): void {
    this.delete();
    run('ip', ['netns', 'add', this.router]);
    run('ip', ['-n', this.router, 'link', 'set', 'lo', 'up']);
    run('ip', ['netns', 'exec', this.router, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
    this.subnets.forEach(({ ns, address }, i) => {
      const gateway = `10.78.${i + 1}.1`;
      run('ip', ['netns', 'add', ns]);
      run('ip', [
        '-n',
        this.router,
        'link',
        'add',
        `r${i + 1}`,
        'type',
        'veth',
        'peer',
        'name',
        'eth0',
        'netns',
        ns,
      ]);
      run('ip', ['-n', this.router, 'addr', 'add', `${gateway}/24`, 'dev', `r${i + 1}`]);
      run('ip', ['-n', this.router, 'link', 'set', `r${i + 1}`, 'up']);
      run('ip', ['-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
      run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      run('ip', ['-n', ns, 'route', 'add', 'default', 'via', gateway]);
      // mDNS would send on it; the router does not forward multicast.
      run('ip', ['-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0']);
    });
  }

  delete(): void {
    for (const ns of [this.router, ...this.subnets.map((subnet) => subnet.ns)])
      spawnSync('ip', ['netns', 'del', ns]);
  }
}
