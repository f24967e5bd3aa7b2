// The media the agent links over: Wi-Fi TCP with its static peers, BLE with its scan resolver (loaded only
// when configured) and the board's Wi-Fi/BLE coexistence rule, and mDNS once the listener is bound.
import { detectBoardSync } from '../../boards/index.js';
import type { BleResolver } from '../../transports/ble/ble-resolver.js';
import type { BleTransport } from '../../transports/ble/ble-transport.js';
import type { Resolver } from '../../transports/resolver.js';
import type { Transport } from '../../transports/transport.js';
import type { MdnsResolver } from '../../transports/wifi/mdns-resolver.js';
import { StaticResolver } from '../../transports/wifi/static-resolver.js';
import { TcpTransport } from '../../transports/wifi/tcp-transport.js';
import type { Config } from '../config/index.js';
import type { Counters } from '../core/counters.js';
import { formatHostPort } from '../core/host-port.js';
import type { Lifecycle } from '../core/lifecycle.js';
import type { Logger } from '../core/logger.js';
import type { LinkManager } from '../links/link-manager.js';
import { coexistenceQuirk, scanDutyFor, WifiActivity } from '../ops/wifi-activity.js';

/** With ble.enabled = "auto", how long an adapter may take to power on before the agent runs without BLE. */
const AUTO_BLE_POWER_ON_TIMEOUT_MS = 3000;

export interface MediaOptions {
  config: Config;
  peerId: string;
  /** Discovery seals its hints under the current key and opens them under every key still accepted. */
  meshKeys: () => readonly Uint8Array[];
  /** Addresses learnt when this device joined its mesh, dialled like the config's [[peers]]. */
  learnedPeers?: readonly string[];
  /** The open invitation's discriminator, shown on the LAN (mDNS TXT `j`); undefined when none is open. */
  invitation?: () => number | undefined;
  lifecycle: Lifecycle;
  counters: Counters;
  log: Logger;
}

export class Media {
  readonly transports: Transport[] = [];
  readonly resolvers: Resolver[] = [];
  tcp: TcpTransport | undefined;
  ble: BleTransport | undefined;
  bleResolver: BleResolver | undefined;
  mdns: MdnsResolver | undefined;
  /** Meeting agents of other subnets through the site broker, when `[rendezvous]` is on. */
  rendezvous: { rekey(): Promise<void> } | undefined;

  private constructor(private readonly options: MediaOptions) {}

  /** Builds the configured transports and resolvers; BLE is started here to learn whether it works. */
  static async open(options: MediaOptions): Promise<Media> {
    const media = new Media(options);
    const { config } = options;
    if (config.wifi.enabled) {
      media.tcp = new TcpTransport({ listen: config.wifi.listen });
      media.transports.push(media.tcp);
      const configured = config.peers.map((peer) => formatHostPort(peer.address));
      const learned = options.learnedPeers ?? [];
      media.resolvers.push(new StaticResolver([...new Set([...configured, ...learned])]));
    }
    if (config.ble.enabled !== false) await media.#openBle();
    return media;
  }

  /** The address the Wi-Fi listener is bound to ("host:port"), once the links have started. */
  listening(): string | null {
    const address = this.tcp?.address();
    return address === undefined ? null : formatHostPort(address);
  }

  /** mDNS needs the port actually bound (the configured one may be 0), so it starts after the links. */
  async startMdns(links: LinkManager): Promise<void> {
    const listening = this.tcp?.address();
    if (listening === undefined || !this.options.config.wifi.discovery.includes('mdns')) return;
    // Listening on one address means announcing (and browsing) on that interface only.
    const isWildcard = listening.host === '0.0.0.0' || listening.host === '::';
    // Loaded only when configured: the mDNS stack costs several MB that a static-peers agent never needs.
    const { MdnsResolver } = await import('../../transports/wifi/mdns-resolver.js');
    this.mdns = new MdnsResolver({
      peerId: this.options.peerId,
      meshKeys: this.options.meshKeys,
      port: listening.port,
      ...(this.options.invitation !== undefined && { invitation: this.options.invitation }),
      ...(isWildcard ? {} : { interfaceAddress: listening.host }),
    });
    await links.addResolver(this.mdns);
  }

  /** After a key rotation: hints sealed under the old key would stop opening for agents that dropped it. */
  rotateDiscoveryHints(): void {
    const { log } = this.options;
    this.ble?.rotateDiscoveryHint().catch((error: unknown) => log.warn({ err: error }, 'BLE: new hint'));
    this.mdns?.rotate().catch((error: unknown) => log.warn({ err: error }, 'mDNS: new hint'));
  }

  /** The mesh key changed, or this agent now has a mesh: every discovery record moves to the new key. */
  meshChanged(): void {
    this.rotateDiscoveryHints();
    this.rendezvous
      ?.rekey()
      .catch((error: unknown) => this.options.log.warn({ err: error }, 'rendezvous: rekey'));
  }

  /** Discovery records that did not open under our keys: other meshes, or agents not yet rekeyed. */
  ignoredCounts(): Record<string, number> {
    return {
      'discovery.ble_ignored': this.bleResolver?.ignoredCount ?? 0,
      'discovery.mdns_ignored': this.mdns?.ignoredCount ?? 0,
    };
  }

  /**
   * Starts the BLE transport before the link manager (which starts it again, a no-op) to learn whether BLE
   * works here: with "auto", missing libraries or adapters cost one log line; with true they stop the agent.
   */
  async #openBle(): Promise<void> {
    const { config, peerId, meshKeys, log, counters } = this.options;
    // Loaded only when configured, like mDNS: an agent without BLE never pays for its code.
    const [{ BleTransport }, { BleResolver }] = await Promise.all([
      import('../../transports/ble/ble-transport.js'),
      import('../../transports/ble/ble-resolver.js'),
    ]);
    const ble = new BleTransport({
      peripheral: config.ble.peripheral,
      central: config.ble.central,
      peerId,
      meshKeys,
      isWifiAvailable: config.wifi.enabled,
      ...(this.options.invitation !== undefined && {
        isInviting: () => this.options.invitation?.() !== undefined,
      }),
      maxLinks: config.ble.maxLinks,
      ...(config.ble.enabled === 'auto' && { powerOnTimeoutMs: AUTO_BLE_POWER_ON_TIMEOUT_MS }),
    });
    try {
      await ble.start();
    } catch (error) {
      if (config.ble.enabled === true) throw error;
      const reason = error instanceof Error ? error.message : String(error);
      log.info(`BLE: not available, running without it (${reason})`);
      return;
    }
    ble.on('adapter', (change) => {
      const fields = { role: change.role, adapter: change.adapter };
      if (change.state === 'lost') {
        counters.increment('ble.adapters_lost');
        log.warn(fields, `BLE ${change.role} adapter lost: ${change.detail}`);
      } else {
        counters.increment('ble.adapters_reopened');
        log.info(fields, `BLE ${change.role} adapter back: ${change.detail}`);
      }
    });
    this.ble = ble;
    this.bleResolver = new BleResolver(ble, { peerId, meshKeys });
    this.transports.push(ble);
    this.resolvers.push(this.bleResolver);
    await this.#applyCoexistence(ble);
  }

  /**
   * The board's 'wifi-ble-coexistence' quirk (boards/profiles.ts): while its Wi-Fi is busy, BLE scans with the
   * quirk's lower duty, continuously again once Wi-Fi is idle. Boards without the quirk scan continuously.
   */
  async #applyCoexistence(ble: BleTransport): Promise<void> {
    const { counters, log, lifecycle } = this.options;
    const profile = detectBoardSync().profile;
    const quirk = coexistenceQuirk(profile);
    if (quirk === undefined || profile.wifiInterface === null || !ble.hasCentral) return;
    const activity = new WifiActivity({ interface: profile.wifiInterface });
    activity.on('change', (wifi) => {
      const duty = scanDutyFor(quirk, wifi);
      if (!ble.setScanDuty(duty)) return;
      counters.increment('ble.scan_duty_changes');
      const why = wifi.isBusy
        ? `${wifi.interface} busy (${Math.round(wifi.bytesPerS / 1000)} kB/s, assumed ${wifi.band}), ${quirk.chip} shared with Bluetooth`
        : `${wifi.interface} idle`;
      log.info(
        { duty: ble.scanDuty, wifi: wifi.interface, busy: wifi.isBusy },
        `BLE: scan duty ${Math.round(ble.scanDuty * 100)}% (${why})`,
      );
    });
    await lifecycle.start('wifi activity', activity);
  }
}
