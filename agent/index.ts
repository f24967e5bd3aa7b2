// The embedding API: everything a program needs to run an agent in-process, and nothing else.
import { Agent } from './agent.js';
import { type Config, loadConfig } from './config/index.js';
import { createLogger, type Logger } from './core/logger.js';

export { Agent } from './agent.js';
export type * from './api.js';
export type { Config } from './config/index.js';
export { loadConfig } from './config/index.js';
export { FrameTooLargeError, NearmeshError, PeerUnreachableError, TimeoutError } from './core/errors.js';

export interface CreateAgentOptions {
  /** A config file; without it $NEARMESH_CONFIG, else the embedded defaults. */
  configPath?: string;
  config?: Config;
  log?: Logger;
}

/** Loads the config (unless given), builds the agent and starts it. */
export async function createAgent(options: CreateAgentOptions = {}): Promise<Agent> {
  const config =
    options.config ??
    (await loadConfig(options.configPath === undefined ? {} : { path: options.configPath }));
  const agent = new Agent(config, options.log ?? createLogger({ level: config.logLevel }));
  await agent.start();
  return agent;
}
