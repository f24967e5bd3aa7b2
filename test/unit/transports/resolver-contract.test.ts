// The resolver contract against every resolver: a user's own (written on node:events, as docs/RESOLVERS.md
// shows), the static list, the BLE scan (a fake central: the radio side is test/system/ble-*.test.ts) and
// the exec resolver running a real shell script.
import { EventEmitter } from 'node:events';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TypedEmitter } from '../../../agent/core/events.js';
import { BLE_HINT_LAYOUT } from '../../../transports/ble/advertisement.js';
import { BleResolver, type ScanningTransport } from '../../../transports/ble/ble-resolver.js';
import type { DiscoveredPeripheral } from '../../../transports/ble/central.js';
import { sealHint } from '../../../transports/discovery-hint.js';
import { ExecResolver } from '../../../transports/exec-resolver.js';
import type { PeerCandidate, Resolver } from '../../../transports/resolver.js';
import { StaticResolver } from '../../../transports/wifi/static-resolver.js';
import { describeResolverContract } from './resolver-contract.js';

/** What a user writes: node's EventEmitter, no package class, candidates from wherever they come. */
class InventoryResolver extends EventEmitter implements Resolver {
  readonly name = 'inventory';
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly addresses: string[]) {
    super();
  }

  async start(): Promise<void> {
    // As if looked up somewhere: reported a moment after start resolves.
    this.#timer = setTimeout(() => {
      for (const address of this.addresses)
        this.emit('found', { medium: 'wifi', address, source: this.name } satisfies PeerCandidate);
    }, 5);
  }

  async stop(): Promise<void> {
    clearTimeout(this.#timer);
  }

  remove(address: string): void {
    this.emit('lost', { medium: 'wifi', address, source: this.name } satisfies PeerCandidate);
  }
}

describeResolverContract({
  title: "a user's own, on node:events",
  medium: 'wifi',
  addresses: ['10.0.0.2:7450', '[fd00::3]:7450'],
  make: async (addresses) => {
    const resolver = new InventoryResolver(addresses);
    return { resolver, lose: async (address) => resolver.remove(address) };
  },
});

describeResolverContract({
  title: 'static ([[peers]])',
  medium: 'wifi',
  addresses: ['10.0.0.2:7450', 'pump.local:7450'],
  make: async (addresses) => ({ resolver: new StaticResolver(addresses) }),
});

const MESH_KEY = new Uint8Array(32).fill(7);
const OWN_ID = '1111111111111111';
/** Noble ids of two agents this one dials (their ids sort after its own). */
const BLE_PEERS: Record<string, string> = {
  '00aa22222222': '2222222222222222',
  '00aa33333333': '3333333333333333',
};

class FakeCentral
  extends TypedEmitter<{ discover: (peripheral: DiscoveredPeripheral) => void }>
  implements ScanningTransport
{
  readonly hasCentral = true;

  constructor(private readonly addresses: string[]) {
    super();
  }

  async startScanning(): Promise<void> {
    setImmediate(() => {
      for (const address of this.addresses) this.advertise(address, true);
    });
  }

  async stopScanning(): Promise<void> {}
  async rescan(): Promise<void> {}
  scanPausedMs(): number {
    return 0;
  }

  advertise(address: string, isAcceptingLinks: boolean): void {
    this.emit('discover', {
      id: address,
      address: '00:aa:01:00:00:42',
      rssi: -60,
      advertisement: {
        version: 2,
        hint: sealHint(() => [MESH_KEY], BLE_PEERS[address] as string, BLE_HINT_LAYOUT),
        isWifiAvailable: false,
        isAcceptingLinks,
        isInviting: false,
      },
    });
  }
}

describeResolverContract({
  title: 'BLE scan (fake central)',
  medium: 'ble',
  addresses: Object.keys(BLE_PEERS) as [string, string],
  make: async (addresses) => {
    const central = new FakeCentral(addresses);
    const resolver = new BleResolver(central, { peerId: OWN_ID, meshKeys: () => [MESH_KEY] });
    // An agent that stops accepting links (its BLE slots are full) is lost until it accepts again.
    return { resolver, lose: async (address) => central.advertise(address, false) };
  },
});

let scriptDir: string | undefined;

describeResolverContract({
  title: 'exec (a shell script)',
  medium: 'wifi',
  addresses: ['10.0.0.2:7450', '10.0.0.3:7450'],
  make: async (addresses) => {
    scriptDir ??= await mkdtemp(join(tmpdir(), 'nearmesh-exec-resolver-'));
    const script = join(scriptDir, `peers-${addresses.length}.sh`);
    // Reports its addresses, then takes back whichever address a line on the control file names.
    const found = addresses.map((address) => `echo '{"found": {"address": "${address}"}}'`).join('\n');
    await writeFile(
      script,
      `#!/bin/sh\n${found}\nwhile true; do\n  if [ -f "$0.lose" ]; then echo "{\\"lost\\": {\\"address\\": \\"$(cat "$0.lose")\\"}}"; rm "$0.lose"; fi\n  sleep 0.05\ndone\n`,
    );
    await chmod(script, 0o755);
    const resolver = new ExecResolver({
      name: 'peers-sh',
      argv: [script],
      stderr: () => {},
      maxCandidates: 16,
    });
    return { resolver, lose: async (address) => writeFile(`${script}.lose`, address) };
  },
  cleanup: async () => {
    if (scriptDir !== undefined) await rm(scriptDir, { recursive: true, force: true });
    scriptDir = undefined;
  },
});
