// A `[[resolvers]]` table made into a running ExecResolver: its program's stderr goes to the agent's log under
// the resolver's name.
import { ExecResolver } from '../../transports/exec-resolver.js';
import type { ExecResolverConfig } from '../config/resolvers.js';
import type { Logger } from '../core/logger.js';

export function execResolver(config: ExecResolverConfig, log: Logger): ExecResolver {
  const resolverLog = log.child({ resolver: config.name });
  return new ExecResolver({
    name: config.name,
    argv: config.exec,
    maxCandidates: config.maxCandidates,
    stderr: (line) => resolverLog.info(`${config.name}: ${line}`),
  });
}
