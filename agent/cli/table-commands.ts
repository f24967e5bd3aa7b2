// `nearmesh peers`, `routes` and `resolvers`: the agent's tables of who it knows, how it reaches them, and
// where it learns of them.
import type { Command } from 'commander';
import {
  formatPeers,
  formatResolvers,
  formatRoutes,
  formatTopology,
  formatTransfers,
} from '../console/format.js';
import { registerReportCommand } from './client-options.js';

export function registerTableCommands(program: Command): void {
  registerReportCommand(program, 'peers', 'list known peers and their links', formatPeers);
  registerReportCommand(program, 'routes', 'show the mesh route table', formatRoutes);
  registerReportCommand(
    program,
    'topology',
    'every agent of the mesh this one knows: its board, version, groups and links',
    formatTopology,
  );
  registerReportCommand(
    program,
    'transfers',
    'files on their way, out and in, with progress',
    formatTransfers,
  );
  registerReportCommand(
    program,
    'resolvers',
    'where candidates come from: each resolver, its state, what it found, dialled and linked',
    formatResolvers,
  );
}
