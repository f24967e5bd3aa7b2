// The embedding API: everything a program needs to run an agent in-process, and nothing else.
import type { Resolver } from '../transports/resolver.js';
import { Agent } from './agent.js';
import { type Config, loadConfig } from './config/index.js';
import { createLogger, type Logger } from './core/logger.js';

export type {
  PeerCandidate,
  Resolver,
  ResolverEvents,
  ResolverHealth,
} from '../transports/resolver.js';
export { Agent } from './agent.js';
export type * from './api.js';
export type { Config } from './config/index.js';
export { loadConfig } from './config/index.js';
export { FrameTooLargeError, NearmeshError, PeerUnreachableError, TimeoutError } from './core/errors.js';
export { TypedEmitter } from './core/events.js';
export { ResolverError } from './links/resolver-book.js';

export interface CreateAgentOptions {
  /** A config file; without it $NEARMESH_CONFIG, else the embedded defaults. */
  configPath?: string;
  config?: Config;
  log?: Logger;
  /**
   * Resolvers of this program's own (the contract: docs/RESOLVERS.md), besides the built-in and configured
   * ones. A name taken or malformed fails createAgent with ResolverError; one that cannot start is reported
   * (`nearmesh resolvers`) while the agent runs on.
   */
  resolvers?: readonly Resolver[];
}

/** Loads the config (unless given), builds the agent and starts it. */
export async function createAgent(options: CreateAgentOptions = {}): Promise<Agent> {
  const config =
    options.config ??
    (await loadConfig(options.configPath === undefined ? {} : { path: options.configPath }));
  const log = options.log ?? createLogger({ level: config.logLevel });
  const agent = new Agent(config, log, {
    ...(options.resolvers !== undefined && { resolvers: options.resolvers }),
  });
  await agent.start();
  return agent;
}
