// Defaults that depend on where the agent runs (systemd, root, a user shell). Pure functions of their
// inputs so every rule is testable without touching the real environment.

import { homedir as osHomedir, hostname as osHostname } from 'node:os';
import { isAbsolute, join } from 'node:path';
import type { BoardProfile } from '../../boards/index.js';
import { detectBoardSync } from '../../boards/index.js';

/** Control socket file name inside data_dir, when [control] socket is not set. */
export const CONTROL_SOCKET_FILE = 'control.sock';
/** The mesh key kept in data_dir when the config has no mesh_key (written by invite or join). */
export const MESH_KEY_FILE = 'mesh.key';
export const SYSTEM_DATA_DIR = '/var/lib/nearmesh';

export interface DataDirInputs {
  readonly env: NodeJS.ProcessEnv;
  /** Effective user id; undefined where the platform has none. */
  readonly uid: number | undefined;
  readonly homedir: string;
}

/**
 * $STATE_DIRECTORY (systemd StateDirectory=; first entry when there are several), else /var/lib/nearmesh
 * for root, else $XDG_STATE_HOME/nearmesh, else ~/.local/state/nearmesh.
 */
export function defaultDataDir({ env, uid, homedir }: DataDirInputs): string {
  const stateDirectory = env.STATE_DIRECTORY?.split(':')[0];
  if (stateDirectory !== undefined && stateDirectory !== '') return stateDirectory;
  if (uid === 0) return SYSTEM_DATA_DIR;
  // The XDG spec says relative values are invalid and must be ignored.
  const xdg = env.XDG_STATE_HOME;
  if (xdg !== undefined && isAbsolute(xdg)) return join(xdg, 'nearmesh');
  return join(homedir, '.local', 'state', 'nearmesh');
}

/** The host name cut to the 63 characters `name` allows, so a long FQDN never makes the defaults invalid. */
export function defaultName(hostname: string): string {
  const name = hostname.trim().slice(0, 63);
  return name === '' ? 'nearmesh' : name;
}

/** What the defaults are computed from; tests pass their own, the agent takes the process's. */
export interface Environment {
  readonly env: NodeJS.ProcessEnv;
  readonly uid: number | undefined;
  readonly homedir: string;
  readonly hostname: string;
  /** What the detected board suggests for BLE and relaying (boards/profiles.ts). */
  readonly board: BoardDefaults;
}

export type BoardDefaults = BoardProfile['defaults'];

export function processEnvironment(overrides: Partial<Environment> = {}): Environment {
  return {
    env: overrides.env ?? process.env,
    uid: 'uid' in overrides ? overrides.uid : process.getuid?.(),
    homedir: overrides.homedir ?? osHomedir(),
    hostname: overrides.hostname ?? osHostname(),
    board: overrides.board ?? detectBoardSync().profile.defaults,
  };
}
