// <data_dir>/mesh.json: what a device learnt of its mesh when it founded or joined it, besides the key:
// the mesh's name and its admins. The config's [security] admins, when set, win over the saved list.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/atomic-file.js';
import { NearmeshError } from '../core/errors.js';
import { checkHostPort } from '../core/host-port.js';
import { isPeerId } from '../core/peer-id.js';

export const MEMBERSHIP_FILE = 'mesh.json';
const MAX_MESH_NAME_CHARS = 64;
/** Inviter addresses kept (a device joins once; more would only be stale). */
const MAX_ADDRESSES = 8;

export interface Membership {
  /** The mesh's name, shown in status ("" for a mesh formed before names, by copying mesh_key). */
  readonly name: string;
  /** Peer ids allowed to revoke and rekey, as the inviter handed them over; empty: every member. */
  readonly admins: readonly string[];
  /**
   * Where the inviter was reached ("host:port"): dialled again after a restart, so a device that joined
   * through an address given by hand (no mDNS on that LAN) finds its mesh again.
   */
  readonly addresses: readonly string[];
}

/** mesh.json cannot be read or is damaged. */
export class MembershipError extends NearmeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('membership', message, options);
  }
}

/** A mesh name a person may give: 1-64 printable characters. Returns the problem, or undefined. */
export function meshNameProblem(name: string): string | undefined {
  if (name.length === 0 || [...name].length > MAX_MESH_NAME_CHARS)
    return `a mesh name has 1 to ${MAX_MESH_NAME_CHARS} characters`;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'a mesh name has no control characters';
  return undefined;
}

/** Reads mesh.json; undefined when there is none. */
export async function loadMembership(dataDir: string): Promise<Membership | undefined> {
  const path = join(dataDir, MEMBERSHIP_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new MembershipError(`cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new MembershipError(`${path} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  const candidate = value as Partial<Membership> | null;
  if (
    typeof candidate !== 'object' ||
    candidate === null ||
    typeof candidate.name !== 'string' ||
    !Array.isArray(candidate.admins) ||
    !candidate.admins.every((id) => typeof id === 'string' && isPeerId(id)) ||
    !(candidate.addresses === undefined || isAddressList(candidate.addresses))
  ) {
    throw new MembershipError(
      `${path} is damaged: expected {"name": "...", "admins": ["<peer id>", ...], "addresses": ["host:port", ...]}`,
    );
  }
  return { name: candidate.name, admins: [...candidate.admins], addresses: [...(candidate.addresses ?? [])] };
}

function isAddressList(value: unknown): value is string[] {
  return (
    Array.isArray(value) &&
    value.length <= MAX_ADDRESSES &&
    value.every((address) => typeof address === 'string' && checkHostPort(address).ok)
  );
}

export async function saveMembership(dataDir: string, membership: Membership): Promise<void> {
  const { name, admins, addresses } = membership;
  const text = `${JSON.stringify({ name, admins, addresses: addresses.slice(0, MAX_ADDRESSES) }, null, 2)}\n`;
  await writeFileAtomic(join(dataDir, MEMBERSHIP_FILE), text, 0o600);
}
