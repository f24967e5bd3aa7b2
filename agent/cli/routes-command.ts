// `nearmesh routes`: the mesh route table (agents beyond the direct links, the neighbour each is reached by).
import type { Command } from 'commander';
import type { RouteInfo } from '../control/wire.js';
import { addClientOptions, type ClientOptions, printJson, requestOnce } from './client-options.js';
import { formatTable } from './table.js';

export function registerRoutesCommand(program: Command): void {
  addClientOptions(program.command('routes').description('show the mesh route table')).action(
    async (options: ClientOptions) => {
      const routes = (await requestOnce(options, { cmd: 'routes' })) as RouteInfo[];
      if (options.json === true) return printJson(routes);
      if (routes.length === 0) return void process.stdout.write('no routes yet\n');
      const rows = routes.map((route) => [
        route.destination,
        route.name ?? '-',
        String(route.hops),
        `${route.next_hop_name ?? '-'} (${route.next_hop})`,
        `${route.age_s} s`,
      ]);
      process.stdout.write(formatTable(['DESTINATION', 'NAME', 'HOPS', 'NEXT HOP', 'AGE'], rows));
    },
  );
}
