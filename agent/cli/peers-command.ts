// `nearmesh peers`: the peer table (authenticated peers only: a device of another mesh never shows).
import type { Command } from 'commander';
import type { PeerInfo } from '../links/peer-directory.js';
import { addClientOptions, type ClientOptions, printJson, requestOnce } from './client-options.js';
import { formatTable } from './table.js';

export function registerPeersCommand(program: Command): void {
  addClientOptions(program.command('peers').description('list known peers and their links')).action(
    async (options: ClientOptions) => {
      const peers = (await requestOnce(options, { cmd: 'peers' })) as PeerInfo[];
      if (options.json === true) return printJson(peers);
      if (peers.length === 0) return void process.stdout.write('no peers yet\n');
      const nameOf = (id: string | null): string => peers.find((peer) => peer.id === id)?.name ?? id ?? '?';
      const rows = peers.map((peer) => [
        peer.id,
        peer.name,
        peer.state,
        peer.medium ?? '-',
        peer.state === 'routed' ? `via ${nameOf(peer.next_hop)}` : (peer.address ?? peer.addresses[0] ?? '-'),
        peer.hops === null ? '-' : String(peer.hops),
        peer.rtt_ms === null ? '-' : `${peer.rtt_ms} ms`,
        peer.rssi_dbm === null ? '-' : `${peer.rssi_dbm} dBm`,
        peer.last_seen,
      ]);
      process.stdout.write(
        formatTable(['ID', 'NAME', 'STATE', 'MEDIUM', 'ADDRESS', 'HOPS', 'RTT', 'RSSI', 'LAST SEEN'], rows),
      );
    },
  );
}
