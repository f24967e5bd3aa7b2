// Which mesh this agent belongs to, and the two ways into one: `invite` on a member (the first invite on a
// device with no mesh founds one: the key it held in memory becomes mesh.key) and `join CODE` on a device
// with no mesh, which finds the inviter on the LAN (its mDNS record shows the code's discriminator, or an
// address the user gives), runs the join exchange, saves what it was handed and links. Until then the agent
// serves its own device and dials nobody: no handshake could succeed.
import type { FrameLink } from '../../transports/transport.js';
import { StaticResolver } from '../../transports/wifi/static-resolver.js';
import type { Config } from '../config/index.js';
import { saveMeshKey } from '../config/mesh-key.js';
import type { Counters } from '../core/counters.js';
import { NearmeshError } from '../core/errors.js';
import { formatHostPort } from '../core/host-port.js';
import type { Logger } from '../core/logger.js';
import type { Identity } from '../identity/identity.js';
import type { LinkManager } from '../links/link-manager.js';
import { DecodeError } from '../protocol/errors.js';
import type { JoinGrant } from '../protocol/join.js';
import { decodeKeyRotation, encodeKeyRotation, type KeyRotation } from '../protocol/trust.js';
import { type InviteCode, parseInviteCode } from '../security/join-code.js';
import { JoinError, joinWithCode, type ReceivedGrant } from '../security/join-exchange.js';
import type { InvitationStatus, Invitations } from '../trust/invitations.js';
import { type Membership, meshNameProblem, saveMembership } from '../trust/membership.js';
import type { MeshKeyRing } from '../trust/mesh-key-ring.js';
import type { Media } from './media.js';

/** How often a joining device looks again for its inviter. */
const INVITER_POLL_MS = 500;
const WIFI_DIAL_MS = 5_000;
/** A BLE connection (scan, connect, MTU, subscribe) takes longer than a TCP one. */
const BLE_DIAL_MS = 15_000;

interface InviterCandidate {
  medium: 'wifi' | 'ble';
  address: string;
}
export const DEFAULT_JOIN_TIMEOUT_MS = 60_000;

/** `join` or `invite` cannot be done here (already in a mesh, no Wi-Fi, a bad name ...). */
export class MembershipRefusedError extends NearmeshError {
  constructor(message: string) {
    super('membership-refused', message);
  }
}

export interface MeshMembershipOptions {
  config: Config;
  identity: Identity;
  /** Whether the agent started with a mesh key (config mesh_key or data_dir/mesh.key). */
  hasMesh: boolean;
  saved: Membership | undefined;
  counters: Counters;
  log: Logger;
}

export interface JoinOutcome {
  mesh: string;
  inviter: { peer: string; name: string };
  address: string;
}

export class MeshMembership {
  #hasMesh: boolean;
  #name: string;
  #savedAdmins: readonly string[];
  #addresses: readonly string[];
  #links: LinkManager | undefined;
  #media: Media | undefined;
  #keyRing: MeshKeyRing | undefined;
  #joining = false;

  constructor(private readonly options: MeshMembershipOptions) {
    this.#hasMesh = options.hasMesh;
    this.#name = options.saved?.name ?? '';
    this.#savedAdmins = options.saved?.admins ?? [];
    this.#addresses = options.saved?.addresses ?? [];
  }

  /** The key ring, links and media, once built (the membership comes first: the trust state asks it for admins). */
  attach(parts: { keyRing: MeshKeyRing; links: LinkManager; media: Media }): void {
    this.#keyRing = parts.keyRing;
    this.#links = parts.links;
    this.#media = parts.media;
  }

  /** Where the inviter was reached when this device joined: dialled like static peers. */
  get addresses(): readonly string[] {
    return this.#addresses;
  }

  #ring(): MeshKeyRing {
    if (this.#keyRing === undefined) throw new NearmeshError('not-started', 'the agent has not started');
    return this.#keyRing;
  }

  get hasMesh(): boolean {
    return this.#hasMesh;
  }

  get name(): string {
    return this.#name;
  }

  /** Who may revoke and rekey: the config's [security] admins when set, else what the inviter handed over. */
  admins(): readonly string[] {
    const configured = this.options.config.security.admins;
    return configured.length > 0 ? configured : this.#savedAdmins;
  }

  /** What an invitation hands a new member. */
  grant(): JoinGrant {
    const { identity, config } = this.options;
    const current = this.#ring().current;
    return {
      meshName: this.#name,
      epoch: current.epoch,
      key: current.key,
      rotation: current.rotation === undefined ? null : encodeKeyRotation(current.rotation),
      admins: [...this.admins()],
      inviterKey: identity.publicKey,
      inviterName: config.name,
    };
  }

  /** Opens an invitation; on a device with no mesh it founds one first (named `meshName`). */
  async invite(
    invitations: Invitations,
    options: { ttlMs?: number; attempts?: number; meshName?: string },
  ): Promise<InvitationStatus & { mesh: string; founded: boolean }> {
    const { config, log, counters } = this.options;
    const name = options.meshName;
    const problem = name === undefined ? undefined : meshNameProblem(name);
    if (problem !== undefined) throw new MembershipRefusedError(problem);
    if (name !== undefined && this.#hasMesh && this.#name !== '' && name !== this.#name) {
      throw new MembershipRefusedError(`this agent's mesh is already named "${this.#name}"`);
    }
    if (this.#media?.tcp === undefined && this.#media?.ble === undefined) {
      throw new MembershipRefusedError('inviting needs Wi-Fi/LAN or BLE: both are off or unavailable here');
    }
    const founded = !this.#hasMesh;
    if (founded || (name !== undefined && this.#name === '')) {
      this.#name = name ?? `${config.name}-mesh`;
      await saveMembership(config.dataDir, {
        name: this.#name,
        admins: [...this.#savedAdmins],
        addresses: [...this.#addresses],
      });
    }
    if (founded) {
      // The key held in memory since start becomes the mesh's: nothing else changes, no link was possible.
      await saveMeshKey(config.dataDir, this.#ring().current.key);
      this.#hasMesh = true;
      counters.increment('join.meshes_founded');
      log.info(
        { mesh: this.#name },
        `founded mesh "${this.#name}": this agent holds its key in ${config.dataDir}/mesh.key`,
      );
      this.#links?.redialAll();
      this.#media?.meshChanged();
    }
    const invitation = invitations.open({
      ...(options.ttlMs !== undefined && { ttlMs: options.ttlMs }),
      ...(options.attempts !== undefined && { attempts: options.attempts }),
    });
    return { ...invitation, mesh: this.#name, founded };
  }

  /** Joins the mesh of the agent that showed the invitation with this code; saves what it hands over. */
  async join(codeText: string, options: { address?: string; timeoutMs?: number }): Promise<JoinOutcome> {
    const { config, log } = this.options;
    const code = parseInviteCode(codeText);
    if (config.meshKey !== undefined) {
      throw new MembershipRefusedError(
        "this agent's mesh key is set in its config (mesh_key): remove it there to join a mesh with a code",
      );
    }
    if (this.#hasMesh) {
      throw new MembershipRefusedError(
        `this agent is already in mesh "${this.#name || 'unnamed'}": to move it to another one, stop it, ` +
          `delete mesh.key, mesh-keys.json and mesh.json in ${config.dataDir}, start it and join again`,
      );
    }
    const media = this.#media;
    if (media?.tcp === undefined && media?.ble === undefined) {
      throw new MembershipRefusedError('joining needs Wi-Fi/LAN or BLE: both are off or unavailable here');
    }
    if (this.#joining) throw new MembershipRefusedError('a join is already running on this agent');
    this.#joining = true;
    try {
      const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_JOIN_TIMEOUT_MS);
      const tried = new Set<string>();
      let lastProblem = `no agent showing invitation ${String(code.discriminator).padStart(2, '0')} was found`;
      log.info({ discriminator: code.discriminator }, 'looking for the inviting agent (LAN, BLE)');
      media.mdns?.query();
      while (Date.now() < deadline) {
        const candidates =
          options.address !== undefined
            ? [{ medium: 'wifi' as const, address: options.address }]
            : this.#inviterCandidates(code.discriminator);
        for (const candidate of candidates.filter((c) => !tried.has(c.address))) {
          tried.add(candidate.address);
          const attempt = await this.#tryInviter(candidate, code, deadline);
          if ('grant' in attempt) return await this.#install(attempt.grant, candidate);
          lastProblem = attempt.problem;
        }
        // A given address that failed is tried again until the deadline (the inviter may still be starting).
        if (options.address !== undefined) tried.clear();
        await new Promise((resolve) => setTimeout(resolve, INVITER_POLL_MS));
      }
      throw new JoinError('timeout', `could not join: ${lastProblem}`);
    } finally {
      this.#joining = false;
    }
  }

  /**
   * Where an inviter may be: on the LAN, agents whose mDNS record shows this discriminator, then the
   * configured static peers; over BLE, agents advertising an open invitation (BLE has no room to show which).
   */
  #inviterCandidates(discriminator: number): InviterCandidate[] {
    const media = this.#media;
    const onLan = [
      ...(media?.mdns?.inviterAddresses(discriminator) ?? []),
      ...this.options.config.peers.map((peer) => formatHostPort(peer.address)),
    ];
    const overBle = media?.bleResolver?.inviterAddresses() ?? [];
    return [
      ...[...new Set(onLan)].map((address) => ({ medium: 'wifi' as const, address })),
      ...overBle.map((address) => ({ medium: 'ble' as const, address })),
    ];
  }

  /** One dial and exchange; a wrong code ends the whole join (other invitations' tries are not spent). */
  async #tryInviter(
    candidate: InviterCandidate,
    code: InviteCode,
    deadline: number,
  ): Promise<{ grant: ReceivedGrant } | { problem: string }> {
    const { config, identity } = this.options;
    const transport = candidate.medium === 'ble' ? this.#media?.ble : this.#media?.tcp;
    if (transport === undefined) return { problem: `${candidate.address}: no ${candidate.medium} here` };
    const dialMs = candidate.medium === 'ble' ? BLE_DIAL_MS : WIFI_DIAL_MS;
    let link: FrameLink;
    try {
      link = await transport.dial(candidate.address, {
        timeoutMs: Math.max(1, Math.min(dialMs, deadline - Date.now())),
      });
    } catch (error) {
      return { problem: `${candidate.address}: ${(error as Error).message}` };
    }
    try {
      return { grant: await joinWithCode(link, { code, identity, name: config.name }) };
    } catch (error) {
      if (error instanceof JoinError && error.reason === 'wrong-code') throw error;
      return { problem: `${candidate.address}: ${(error as Error).message}` };
    } finally {
      link.close();
    }
  }

  async #install(grant: ReceivedGrant, inviter: InviterCandidate): Promise<JoinOutcome> {
    const { address } = inviter;
    // A LAN address is dialled again after a restart; a BLE address changes every 15 minutes, and the
    // inviter's advertisement opens under the new key anyway.
    const learned = inviter.medium === 'wifi' ? [address] : [];
    const { config, counters, log } = this.options;
    const keyRing = this.#ring();
    let rotation: KeyRotation | undefined;
    if (grant.rotation !== null) {
      const decoded = decodeKeyRotation(grant.rotation);
      if (decoded instanceof DecodeError) throw new JoinError('protocol', decoded.message);
      rotation = decoded;
    }
    // mesh.key last: until it is written the device has no mesh, whatever else a power cut left behind.
    await saveMembership(config.dataDir, {
      name: grant.meshName,
      admins: grant.admins,
      addresses: [address],
    });
    await keyRing.replace(grant.key, grant.epoch, rotation);
    await saveMeshKey(config.dataDir, grant.key);
    this.#name = grant.meshName;
    this.#savedAdmins = grant.admins;
    this.#addresses = learned;
    this.#hasMesh = true;
    counters.increment('join.meshes_joined');
    log.info(
      { mesh: grant.meshName, inviter: grant.inviterId, address },
      `joined mesh "${grant.meshName}" through ${grant.inviterName} (${grant.inviterId}): linking`,
    );
    this.#media?.meshChanged();
    const links = this.#links;
    if (links !== undefined) {
      if (learned.length > 0) await links.addResolver(new StaticResolver(learned, 'joined'));
      links.redialAll();
    }
    return { mesh: grant.meshName, inviter: { peer: grant.inviterId, name: grant.inviterName }, address };
  }
}
