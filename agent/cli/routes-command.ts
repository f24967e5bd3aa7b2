// `nearmesh routes`: the mesh route table (agents beyond the direct links, the neighbour each is reached by).
import type { Command } from 'commander';
import { formatRoutes } from '../console/format.js';
import { addClientOptions, type ClientOptions, printJson, requestOnce } from './client-options.js';

export function registerRoutesCommand(program: Command): void {
  addClientOptions(program.command('routes').description('show the mesh route table')).action(
    async (options: ClientOptions) => {
      const routes = await requestOnce(options, { cmd: 'routes' });
      if (options.json === true) return printJson(routes);
      process.stdout.write(formatRoutes(routes));
    },
  );
}
