// Config loading end to end: defaults, every key's validation and the message an operator would read,
// data_dir rules, relative paths, "host:port" parsing and the mesh key file.

import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ConfigError,
  configFilePath,
  defaultConfig,
  defaultDataDir,
  type EnvironmentOptions,
  generateMeshKey,
  loadConfig,
  loadMeshKey,
  MeshKeyError,
  parseConfigText,
  parseMeshKey,
  saveMeshKey,
} from '../../../agent/config/index.js';
import { parseRuleExpression } from '../../../agent/coordination/rule-expression.js';
import { checkBleAdapter, formatBleAdapter } from '../../../agent/core/ble-adapter.js';
import { AddressError, formatHostPort, parseHostPort } from '../../../agent/core/host-port.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'config');
const FILE = '/etc/nearmesh/nearmesh.toml';
/** A fixed environment so no test depends on who runs it or where. */
const ENV: EnvironmentOptions = {
  env: {},
  uid: 1000,
  homedir: '/home/pi',
  hostname: 'raspberrypi',
  board: { ble: { peripheral: 'hci0', central: 'hci0', maxLinks: 4 }, mesh: { relay: true } },
};
const KEY_BYTES = Uint8Array.from({ length: 32 }, (_, i) => i);
const KEY_TEXT = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8';

function parse(text: string, file = FILE) {
  return parseConfigText(text, file, ENV);
}

/** The ConfigError parsing `text` throws. */
function configError(text: string): ConfigError {
  try {
    parse(text);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error(`expected a ConfigError for:\n${text}`);
}

let temp: string;
beforeEach(async () => {
  temp = await mkdtemp(join(tmpdir(), 'nearmesh-config-'));
});
afterEach(async () => {
  await rm(temp, { recursive: true, force: true });
});

describe('defaults', () => {
  it('fills every key when there is no file', async () => {
    const config = await loadConfig(ENV);
    expect(config).toEqual({
      name: 'raspberrypi',
      dataDir: '/home/pi/.local/state/nearmesh',
      logLevel: 'info',
      control: { socketPath: '/home/pi/.local/state/nearmesh/control.sock' },
      wifi: { enabled: true, listen: { host: '0.0.0.0', port: 7450 }, discovery: ['mdns'] },
      ble: {
        enabled: 'auto',
        peripheral: { kind: 'hci', index: 0 },
        central: { kind: 'hci', index: 0 },
        maxLinks: 4,
      },
      peers: [],
      resolvers: [],
      rendezvous: { enabled: false, prefix: 'nearmesh/rendezvous/', ttlS: 300, maxRecords: 256 },
      groups: [],
      mesh: { ttl: 4, relay: true },
      mqtt: {
        listen: { host: '127.0.0.1', port: 1883 },
        listenIsDefault: true,
        maxPacketSize: 1024 * 1024,
        limits: {
          maxConnections: 256,
          connectTimeoutMs: 10_000,
          packetTimeoutMs: 30_000,
          maxKeepAliveMs: 60_000,
          maxUnfinishedBytesTotal: 16 * 1024 * 1024,
          maxTopicLevels: 32,
          maxSubscriptionsPerClient: 1000,
          maxSubscriptionsTotal: 10_000,
          maxSessions: 10_000,
          maxQueuedMessages: 1000,
          maxQueuedBytes: 1024 * 1024,
          maxQueuedBytesTotal: 16 * 1024 * 1024,
          maxRetainedMessages: 10_000,
          maxRetainedBytes: 16 * 1024 * 1024,
          maxUnsentBytes: 4 * 1024 * 1024,
          maxUnsentBytesTotal: 16 * 1024 * 1024,
          maxSensorWatches: 64,
        },
      },
      coordination: { maxRunning: 16, maxQueued: 64, maxScheduled: 1024, maxScheduledPerCaller: 64 },
      actions: [],
      sensors: [],
      rules: [],
      http: { listen: { host: '127.0.0.1', port: 7480 }, listenIsDefault: true },
      homeAssistant: { enabled: false, discoveryPrefix: 'homeassistant' },
      console: { serial: false, baud: 115200, password: undefined, allowUnauthenticated: false },
      inbox: {
        maxMessages: 10_000,
        maxBytes: 16 * 1024 * 1024,
        maxAgeMs: 7 * 24 * 3_600_000,
        whenFull: 'refuse',
        consumerExpiryMs: 7 * 24 * 3_600_000,
      },
      transfer: {
        inbox: '/home/pi/.local/state/nearmesh/inbox',
        maxBytes: 1073741824,
        maxBytesPerPeer: 1073741824,
        accept: true,
      },
      // No admin list: every member may revoke and rekey (PROTOCOL.md §13.5).
      security: { admins: [], shunAfter: 20, shunForMs: 600_000, rekeyOverlapMs: 7 * 86_400_000 },
    });
    expect(config.meshKey).toBeUndefined();
    expect(config.configFile).toBeUndefined();
  });

  it('reads [[resolvers]]: each named after its program unless named, bounded', () => {
    const config = parse(
      '[[resolvers]]\nexec = ["/usr/local/bin/DHCP Peers.sh", "--lease-file", "/var/lib/misc/dnsmasq.leases"]\n' +
        '[[resolvers]]\nexec = ["/opt/srv-lookup"]\nname = "srv"\nmax_candidates = 32',
    );
    expect(config.resolvers).toEqual([
      {
        name: 'dhcp-peers',
        exec: ['/usr/local/bin/DHCP Peers.sh', '--lease-file', '/var/lib/misc/dnsmasq.leases'],
        maxCandidates: 256,
      },
      { name: 'srv', exec: ['/opt/srv-lookup'], maxCandidates: 32 },
    ]);
    expect(parse('').resolvers).toEqual([]);
  });

  it('an empty file means the same defaults', () => {
    const { configFile, ...config } = parse('# nothing here\n');
    expect(configFile).toBe(FILE);
    expect(config).toEqual(defaultConfig(ENV));
  });

  it('cuts a long host name to the 63 characters name allows', () => {
    expect(defaultConfig({ ...ENV, hostname: 'x'.repeat(80) }).name).toBe('x'.repeat(63));
    expect(defaultConfig({ ...ENV, hostname: '' }).name).toBe('nearmesh');
  });

  it('reads a file that sets every key', async () => {
    const file = join(FIXTURES, 'full.toml');
    const config = await loadConfig({ ...ENV, path: file });
    expect(config).toEqual({
      configFile: file,
      name: 'greenhouse-pi',
      dataDir: join(FIXTURES, 'state'),
      meshKey: KEY_BYTES,
      logLevel: 'debug',
      control: { socketPath: join(FIXTURES, 'run', 'nearmesh.sock') },
      wifi: { enabled: true, listen: { host: '::', port: 7451 }, discovery: [] },
      ble: {
        enabled: false,
        peripheral: { kind: 'hci', index: 1 },
        central: { kind: 'uart', path: '/dev/ttyUSB0', baudRate: 1000000 },
        maxLinks: 2,
      },
      peers: [
        { address: { host: '10.0.0.2', port: 7450 } },
        { address: { host: 'pi-shed.local', port: 7450 } },
      ],
      resolvers: [
        {
          name: 'site-peers',
          exec: ['/usr/local/bin/site-peers', '--subnet', '10.2.0.0/16'],
          maxCandidates: 64,
        },
      ],
      rendezvous: {
        enabled: true,
        url: 'mqtt://broker.site:1883',
        prefix: 'site-a/rendezvous/',
        ttlS: 120,
        announce: ['10.2.0.7:7451'],
        maxRecords: 64,
      },
      groups: ['greenhouse', 'sensors'],
      mesh: { ttl: 6, relay: false },
      mqtt: {
        listen: false,
        listenIsDefault: false,
        credentials: { username: 'apps', password: 'app-secret' },
        maxPacketSize: 65536,
        limits: {
          maxConnections: 64,
          connectTimeoutMs: 5000,
          packetTimeoutMs: 20_000,
          maxKeepAliveMs: 120_000,
          maxUnfinishedBytesTotal: 4 * 1024 * 1024,
          maxTopicLevels: 12,
          maxSubscriptionsPerClient: 200,
          maxSubscriptionsTotal: 5000,
          maxSessions: 500,
          maxQueuedMessages: 300,
          maxQueuedBytes: 512 * 1024,
          maxQueuedBytesTotal: 8 * 1024 * 1024,
          maxRetainedMessages: 2000,
          maxRetainedBytes: 2 * 1024 * 1024,
          maxUnsentBytes: 1024 * 1024,
          maxUnsentBytesTotal: 4 * 1024 * 1024,
          maxSensorWatches: 16,
        },
        upstream: {
          url: 'mqtts://broker.example.net:8883',
          clientId: 'greenhouse',
          credentials: { username: 'site-a', password: 'bridge-secret' },
          caFile: join(FIXTURES, 'certs', 'ca.pem'),
          certFile: join(FIXTURES, 'certs', 'client.pem'),
          keyFile: join(FIXTURES, 'certs', 'client.key'),
          out: ['nearmesh/send/#', 'nearmesh/sensor/#'],
          in: ['nearmesh/send/#'],
          prefix: 'site-a/',
          maxQueued: 500,
        },
      },
      actions: [
        {
          name: 'light.set',
          timeoutMs: 5000,
          allow: ['hall-pi', 'group:admins'],
          concurrency: 2,
          queue: 4,
          kind: 'exec',
          exec: ['/usr/local/bin/light', '--pin', '17'],
        },
        // A GPIO line has one state: one run at a time unless told otherwise.
        {
          name: 'relay.set',
          timeoutMs: 10000,
          concurrency: 1,
          queue: 16,
          kind: 'gpio',
          chip: 'gpiochip4',
          line: 17,
          activeLow: true,
        },
      ],
      coordination: { maxRunning: 8, maxQueued: 32, maxScheduled: 256, maxScheduledPerCaller: 16 },
      rules: [
        {
          name: 'fans on when hot',
          when: parseRuleExpression('hall-pi/temp > 30'),
          action: { kind: 'call', target: 'group:fans', action: 'fan.set', args: { on: true } },
          debounceMs: 2000,
          hysteresis: 1.5,
          everyMs: 5000,
        },
      ],
      sensors: [
        { name: 'temp', everyMs: 10000, unit: 'Cel', kind: 'exec', exec: ['/usr/local/bin/read-temp'] },
        { name: 'door.open', kind: 'gpio', chip: 'gpiochip0', line: 27, activeLow: false },
      ],
      http: {
        listen: { host: '0.0.0.0', port: 9480 },
        listenIsDefault: false,
        passwordFile: join(FIXTURES, 'metrics.passwd'),
      },
      homeAssistant: { enabled: false, discoveryPrefix: 'ha-site' },
      console: { serial: '/dev/ttyGS0', baud: 9600, password: undefined, allowUnauthenticated: false },
      inbox: {
        maxMessages: 500,
        maxBytes: 1024 * 1024,
        maxAgeMs: 2 * 3_600_000,
        whenFull: 'drop-oldest',
        consumerExpiryMs: 24 * 3_600_000,
      },
      transfer: {
        inbox: '/srv/nearmesh-inbox',
        maxBytes: 104857600,
        maxBytesPerPeer: 26214400,
        accept: false,
      },
      security: {
        admins: ['56475aa75463474c', '24f6ed6acbfe1009'],
        shunAfter: 5,
        shunForMs: 1_800_000,
        rekeyOverlapMs: 3 * 86_400_000,
      },
    });
  });
});

describe('finding the file', () => {
  it('uses NEARMESH_CONFIG when no path is given', async () => {
    const file = join(temp, 'from-env.toml');
    await writeFile(file, 'name = "from-env"\n');
    const config = await loadConfig({ ...ENV, env: { NEARMESH_CONFIG: file } });
    expect(config.name).toBe('from-env');
    expect(config.configFile).toBe(file);
  });

  it('prefers the explicit path over NEARMESH_CONFIG', async () => {
    const explicit = join(temp, 'explicit.toml');
    await writeFile(explicit, 'name = "explicit"\n');
    const config = await loadConfig({
      ...ENV,
      path: explicit,
      env: { NEARMESH_CONFIG: join(temp, 'absent.toml') },
    });
    expect(config.name).toBe('explicit');
  });

  it('treats an empty NEARMESH_CONFIG as unset', async () => {
    expect(configFilePath({ env: { NEARMESH_CONFIG: '' } })).toBeUndefined();
    expect((await loadConfig({ ...ENV, env: { NEARMESH_CONFIG: '' } })).name).toBe('raspberrypi');
  });

  it('fails on an explicit path that does not exist', async () => {
    const file = join(temp, 'missing.toml');
    const error = await loadConfig({ ...ENV, path: file }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ code: 'config', file, message: `config error in ${file}: file not found` });
  });

  it('says when the missing file came from NEARMESH_CONFIG', async () => {
    const file = join(temp, 'missing.toml');
    await expect(loadConfig({ ...ENV, env: { NEARMESH_CONFIG: file } })).rejects.toThrow(
      `config error in ${file}: file not found (named by NEARMESH_CONFIG)`,
    );
  });

  it('names a file that cannot be read', async () => {
    await expect(loadConfig({ ...ENV, path: temp })).rejects.toThrow(
      `config error in ${temp}: cannot read the file (EISDIR)`,
    );
  });
});

describe('wrong values name the key and the line', () => {
  const cases: [toml: string, key: string, line: number, message: string][] = [
    ['name = 5', 'name', 1, 'name: expected a string of 1..63 characters, got 5'],
    ['name = ""', 'name', 1, 'name: expected a string of 1..63 characters, got ""'],
    [`name = "${'n'.repeat(64)}"`, 'name', 1, 'name: expected a string of 1..63 characters'],
    ['data_dir = false', 'data_dir', 1, 'data_dir: expected a path, got false'],
    ['data_dir = ""', 'data_dir', 1, 'data_dir: expected a non-empty path, got ""'],
    ['mesh_key = 5', 'mesh_key', 1, 'mesh_key: expected a base64url string of 32 bytes, got a number'],
    [
      'log_level = "verbose"',
      'log_level',
      1,
      'log_level: expected one of "trace", "debug", "info", "warn", "error", got "verbose"',
    ],
    ['\n[control]\nsocket = 1', 'control.socket', 3, 'control.socket: expected a path, got 1'],
    ['control = "x"', 'control', 1, 'control: expected a table, got "x"'],
    ['[wifi]\nenabled = "yes"', 'wifi.enabled', 2, 'wifi.enabled: expected true or false, got "yes"'],
    [
      '[wifi]\n\n\n\n\n\nlisten = "0.0.0.0"',
      'wifi.listen',
      7,
      'wifi.listen: expected "host:port", got "0.0.0.0"',
    ],
    ['[wifi]\nlisten = 7450', 'wifi.listen', 2, 'wifi.listen: expected "host:port", got 7450'],
    [
      '[wifi]\nlisten = "0.0.0.0:65536"',
      'wifi.listen',
      2,
      'wifi.listen: expected a port in 0..65535 after the ":", got "0.0.0.0:65536"',
    ],
    [
      '[wifi]\ndiscovery = "mdns"',
      'wifi.discovery',
      2,
      'wifi.discovery: expected an array like ["mdns"] ([] for none), got "mdns"',
    ],
    [
      '[wifi]\ndiscovery = ["mdns", "upnp"]',
      'wifi.discovery[1]',
      2,
      'wifi.discovery[1]: expected "mdns", got "upnp"',
    ],
    ['[ble]\nenabled = "on"', 'ble.enabled', 2, 'ble.enabled: expected "auto", true or false, got "on"'],
    [
      '[ble]\nperipheral = "hci"',
      'ble.peripheral',
      2,
      'ble.peripheral: expected "hciN" or "uart:/path[@baud]", got "hci"',
    ],
    [
      '[ble]\ncentral = "uart:ttyS0"',
      'ble.central',
      2,
      'ble.central: expected an absolute device path after "uart:"',
    ],
    [
      '[ble]\ncentral = "uart:/dev/ttyS0@0"',
      'ble.central',
      2,
      'ble.central: expected a positive baud rate after "@"',
    ],
    [
      '[mqtt]\nusername = "apps"',
      'mqtt.password',
      1,
      'mqtt.password: expected username and password together',
    ],
    [
      '[http]\nlisten = "0.0.0.0:7480"',
      'http.password_file',
      1,
      'http.password_file: required: listen = "0.0.0.0:7480" is not loopback, so readers must log in (mosquitto_passwd -c <file> <user>)',
    ],
    [
      '[mqtt]\nlisten = false\n[homeassistant]\nenabled = true',
      'homeassistant.enabled',
      4,
      'homeassistant.enabled: needs the MQTT endpoint: Home Assistant connects to it, or to the broker of [mqtt.upstream]; remove [mqtt] listen = false, got true',
    ],
    [
      '[homeassistant]\ndiscovery_prefix = "ha/#"',
      'homeassistant.discovery_prefix',
      2,
      'homeassistant.discovery_prefix: expected topic levels like "homeassistant" (no "+", "#", NUL, or "/" at either end), got "ha/#"',
    ],
    [
      '[mqtt]\nmax_packet_size = 10',
      'mqtt.max_packet_size',
      2,
      'mqtt.max_packet_size: expected 1024..268435455 bytes',
    ],
    [
      '[mqtt]\nmax_packet_size = 2097152\nmax_queued_bytes = 1048576',
      'mqtt.max_queued_bytes',
      3,
      'mqtt.max_queued_bytes: expected at least max_packet_size (2097152)',
    ],
    [
      '[mqtt.upstream]\nurl = "http://broker:1883"',
      'mqtt.upstream.url',
      2,
      'mqtt.upstream.url: expected "mqtt://host:port" or "mqtts://host:port"',
    ],
    [
      '[mqtt.upstream]\nurl = "mqtt://u:p@broker"',
      'mqtt.upstream.url',
      2,
      'mqtt.upstream.url: expected the credentials in username and password, not in the URL',
    ],
    [
      '[mqtt.upstream]\nurl = "mqtt://broker"\nout = ["a/#/b"]',
      'mqtt.upstream.out[0]',
      3,
      'mqtt.upstream.out[0]: expected an MQTT topic filter ("+" and "#" only as whole levels, "#" last)',
    ],
    [
      '[mqtt.upstream]\nurl = "mqtt://broker"\nprefix = "site"',
      'mqtt.upstream.prefix',
      3,
      'mqtt.upstream.prefix: expected a topic prefix ending in "/", without "+" or "#" ("" for none)',
    ],
    [
      '[mqtt.upstream]\nurl = "mqtts://broker"\ncert_file = "c.pem"',
      'mqtt.upstream.key_file',
      1,
      'mqtt.upstream.key_file: expected cert_file and key_file together',
    ],
    [
      '[[actions]]\nname = "light set"\nexec = ["/bin/true"]',
      'actions[0].name',
      2,
      'actions[0].name: expected a dotted name like "light.set" (letters, digits, "_", "-"), got "light set"',
    ],
    [
      '[[actions]]\nname = "a"',
      'actions[0].exec',
      1,
      'actions[0].exec: expected exactly one of exec = [...] or gpio = {...}',
    ],
    [
      '[[sensors]]\nname = "t"\nexec = ["/bin/true"]\nevery = "10 s"',
      'sensors[0].every',
      4,
      'sensors[0].every: invalid duration "10 s": unexpected " " at position 3; expected a number and a unit (ms, s, m, h, d), e.g. "500ms", "1.5s" or "1h30m", got "10 s"',
    ],
    [
      '[[rules]]\nwhen = "a/t >"\nthen = "call b x"',
      'rules[0].when',
      2,
      'rules[0].when: rule expression: expected a sensor reference (peer/sensor), a literal, "not" or "(" at column 6, found end of input, got "a/t >"',
    ],
    [
      '[[rules]]\nwhen = "a/t > 1"\nthen = "turn on b"',
      'rules[0].then',
      3,
      'rules[0].then: expected "call <peer|group:NAME|all> <action> [json-object]"',
    ],
    [
      '[[peers]]\naddress = "10.0.0.2"',
      'peers[0].address',
      2,
      'peers[0].address: expected "host:port", got "10.0.0.2"',
    ],
    [
      '[[peers]]\naddress = "a:1"\n[[peers]]\naddress = "b:0"',
      'peers[1].address',
      4,
      'peers[1].address: expected a port in 1..65535',
    ],
    [
      '[[peers]]\naddress = "a:1"\n[[peers]]\n# address forgotten',
      'peers[1].address',
      3,
      'peers[1].address: expected "host:port", got nothing',
    ],
    [
      'peers = [{ address = "a:1" }, { address = "b" }]',
      'peers[1].address',
      1,
      'peers[1].address: expected "host:port", got "b"',
    ],
    ['peers = 3', 'peers', 1, 'peers: expected [[peers]] tables, got 3'],
    [
      '[[resolvers]]\nexec = []',
      'resolvers[0].exec',
      2,
      'resolvers[0].exec: expected ["/path/to/program", "arg", ...]',
    ],
    [
      '[[resolvers]]\nexec = ["/usr/local/bin/dhcp-peers.sh"]\n[[resolvers]]\nexec = ["/opt/dhcp-peers"]',
      'resolvers[1].name',
      3,
      'resolvers[1].name: another resolver is named "dhcp-peers": give each a name = "..."',
    ],
    [
      '[[resolvers]]\nexec = ["/bin/true"]\nname = "mdns"',
      'resolvers[0].name',
      3,
      'resolvers[0].name: "mdns" is a built-in resolver\'s name',
    ],
    [
      '[[resolvers]]\nexec = ["/bin/true"]\nname = "Site Inventory"',
      'resolvers[0].name',
      3,
      'resolvers[0].name: expected a name of 1..32 of a-z, 0-9, "_" and "-", got "Site Inventory"',
    ],
    [
      '[[resolvers]]\nexec = ["/bin/true"]\nmax_candidates = 0',
      'resolvers[0].max_candidates',
      3,
      'resolvers[0].max_candidates: expected a whole number within 1..4096, got 0',
    ],
    ['[mqtt]\nlisten = true', 'mqtt.listen', 2, 'mqtt.listen: expected "host:port" or false, got true'],
    ['[mqtt]\nlisten = "localhost"', 'mqtt.listen', 2, 'mqtt.listen: expected "host:port", got "localhost"'],
    [
      '[console]\nserial = true',
      'console.serial',
      2,
      'console.serial: expected a serial device path or false, got true',
    ],
    ['[console]\nbaud = 0', 'console.baud', 2, 'console.baud: expected a positive integer, got 0'],
    [
      '[console]\npassword = "hunter2"',
      'console.password',
      2,
      'console.password: expected a password hash: $7$<iterations>$<base64 salt>$<base64 64-byte hash> (mosquitto_passwd), got a 7-character string',
    ],
    [
      '[console]\nallow_unauthenticated = "yes"',
      'console.allow_unauthenticated',
      2,
      'console.allow_unauthenticated: expected true or false, got "yes"',
    ],
    ['[ble]\nmax_links = 0', 'ble.max_links', 2, 'ble.max_links: expected a positive integer, got 0'],
    ['[ble]\nmax_links = 21', 'ble.max_links', 2, 'ble.max_links: expected at most 20, got 21'],
    ['[console]\nbaud = 9600.5', 'console.baud', 2, 'console.baud: expected a positive integer, got 9600.5'],
    ['[console]\nbaud = "9600"', 'console.baud', 2, 'console.baud: expected a positive integer, got "9600"'],
    [
      'wifi = { listen = "[::1]" }',
      'wifi.listen',
      1,
      'wifi.listen: expected "[IPv6]:port", like "[::1]:7450", got "[::1]"',
    ],
    ['wifi.listen = "::1:7450"', 'wifi.listen', 1, 'wifi.listen: expected an IPv6 address in brackets'],
    [
      '[security]\nadmins = ["kitchen-pi"]',
      'security.admins[0]',
      2,
      'security.admins[0]: expected a peer id: 16 lowercase hex characters, as `nearmesh id` prints, got "kitchen-pi"',
    ],
    [
      '[security]\nshun_after = -1',
      'security.shun_after',
      2,
      'security.shun_after: expected 0 or more, got -1',
    ],
    [
      '[security]\nrekey_overlap = "30d"',
      'security.rekey_overlap',
      2,
      'security.rekey_overlap: invalid duration "30d": longer than the maximum of 24d, got "30d"',
    ],
    [
      '[coordination]\nmax_running = 0',
      'coordination.max_running',
      2,
      'coordination.max_running: expected a whole number within 1..1024, got 0',
    ],
    [
      '[[actions]]\nname = "a"\nexec = ["/bin/true"]\nconcurrency = 1.5',
      'actions[0].concurrency',
      4,
      'actions[0].concurrency: expected a whole number within 1..64, got 1.5',
    ],
  ];

  it.each(cases)('%j', (toml, key, line, message) => {
    const error = configError(`${toml}\n`);
    expect(error.code).toBe('config');
    expect(error.key).toBe(key);
    expect(error.line).toBe(line);
    expect(error.file).toBe(FILE);
    expect(error.message.startsWith(`config error in ${FILE} line ${line}: ${message}`)).toBe(true);
    expect(error.message).not.toContain('\n');
  });

  it('finds the key inside the right table, not a same-named key elsewhere', () => {
    const error = configError('[mqtt]\nlisten = "127.0.0.1:1883"\n\n[wifi]\nlisten = "nope"\n');
    expect(error.line).toBe(5);
    expect(error.key).toBe('wifi.listen');
  });

  it('is not fooled by table-like text inside a multi-line string', () => {
    const error = configError('name = """\n[wifi]\nlisten = 1\n"""\n[wifi]\nlisten = 2\n');
    expect(error.key).toBe('wifi.listen');
    expect(error.line).toBe(6);
  });
});

describe('unknown keys', () => {
  it('at the top level, with a suggestion', () => {
    const error = configError('name = "a"\n\nwfi = 1\n');
    expect(error.message).toBe(`config error in ${FILE} line 3: unknown key "wfi" (did you mean "wifi"?)`);
    expect(error.key).toBe('wfi');
  });

  it('as a misspelt [table]', () => {
    expect(configError('[wfi]\nlisten = "a:1"\n').message).toBe(
      `config error in ${FILE} line 1: unknown key "wfi" (did you mean "wifi"?)`,
    );
  });

  it('inside a table', () => {
    const error = configError('[wifi]\nenabled = true\nlisen = "0.0.0.0:1"\n');
    expect(error.message).toBe(
      `config error in ${FILE} line 3: unknown key "wifi.lisen" (did you mean "wifi.listen"?)`,
    );
    expect(error.key).toBe('wifi.lisen');
  });

  it('inside the second [[peers]] entry', () => {
    const error = configError('[[peers]]\naddress = "a:1"\n\n[[peers]]\nadress = "b:2"\n');
    expect(error.key).toBe('peers[1].adress');
    expect(error.line).toBe(5);
    expect(error.message).toContain('unknown key "peers[1].adress" (did you mean "peers[1].address"?)');
    // The missing address that the typo causes comes second, on the [[peers]] header line.
    expect(error.issues[1]).toMatchObject({ key: 'peers[1].address', line: 4 });
  });

  it('without a suggestion when nothing is close', () => {
    expect(configError('colour = "blue"\n').message).toBe(
      `config error in ${FILE} line 1: unknown key "colour"`,
    );
  });

  it('explains a top-level key written after a [table]', () => {
    expect(configError('[wifi]\nenabled = true\nname = "pi"\n').message).toBe(
      `config error in ${FILE} line 3: unknown key "wifi.name" (top-level keys must come before the first [table])`,
    );
  });

  it('points a table key written at the top level to its table', () => {
    expect(configError('socket = "/run/x.sock"\n').message).toContain(
      '(did you mean "control.socket", under its [table]?)',
    );
  });
});

describe('several problems', () => {
  it('reports the first in the file in the message and keeps all of them', () => {
    const error = configError('log_level = "loud"\n[wifi]\nlisten = "x"\n[ble]\nenabld = true\n');
    expect(error.key).toBe('log_level');
    expect(error.issues.map((issue) => [issue.key, issue.line])).toEqual([
      ['log_level', 1],
      ['wifi.listen', 3],
      ['ble.enabld', 5],
    ]);
    const lines = error.lines();
    expect(lines[0]).toBe(error.message);
    expect(lines[2]).toBe(
      `config error in ${FILE} line 5: unknown key "ble.enabld" (did you mean "ble.enabled"?)`,
    );
  });
});

describe('TOML syntax errors', () => {
  it('name the line and column', () => {
    const error = configError('name = "pi"\n[wifi]\nlisten = \n');
    expect(error.line).toBe(3);
    expect(error.key).toBeUndefined();
    expect(error.issues[0]?.column).toBe(10);
    expect(error.message).toBe(`config error in ${FILE} line 3: invalid TOML: invalid value (column 10)`);
  });

  it('name a duplicated key', () => {
    const error = configError('name = "a"\nname = "b"\n');
    expect(error.line).toBe(2);
    expect(error.message).toMatch(/line 2: invalid TOML: .*redefine/);
  });
});

describe('data_dir default', () => {
  const home = '/home/pi';
  it('uses $STATE_DIRECTORY from systemd, first entry of several', () => {
    expect(defaultDataDir({ env: { STATE_DIRECTORY: '/var/lib/nearmesh-a' }, uid: 0, homedir: home })).toBe(
      '/var/lib/nearmesh-a',
    );
    expect(
      defaultDataDir({ env: { STATE_DIRECTORY: '/var/lib/a:/var/lib/b' }, uid: 1000, homedir: home }),
    ).toBe('/var/lib/a');
  });

  it('uses /var/lib/nearmesh for root', () => {
    expect(defaultDataDir({ env: {}, uid: 0, homedir: '/root' })).toBe('/var/lib/nearmesh');
    expect(
      defaultDataDir({ env: { STATE_DIRECTORY: '', XDG_STATE_HOME: '/x' }, uid: 0, homedir: '/root' }),
    ).toBe('/var/lib/nearmesh');
  });

  it('uses ~/.local/state/nearmesh for a user', () => {
    expect(defaultDataDir({ env: {}, uid: 1000, homedir: home })).toBe('/home/pi/.local/state/nearmesh');
    expect(defaultDataDir({ env: {}, uid: undefined, homedir: home })).toBe('/home/pi/.local/state/nearmesh');
  });

  it('respects an absolute $XDG_STATE_HOME and ignores a relative one', () => {
    expect(defaultDataDir({ env: { XDG_STATE_HOME: '/srv/state' }, uid: 1000, homedir: home })).toBe(
      '/srv/state/nearmesh',
    );
    expect(defaultDataDir({ env: { XDG_STATE_HOME: 'state' }, uid: 1000, homedir: home })).toBe(
      '/home/pi/.local/state/nearmesh',
    );
  });

  it('flows into the defaults and the socket path', () => {
    const config = defaultConfig({ ...ENV, env: { STATE_DIRECTORY: '/var/lib/nearmesh' } });
    expect(config.dataDir).toBe('/var/lib/nearmesh');
    expect(config.control.socketPath).toBe('/var/lib/nearmesh/control.sock');
  });
});

describe('paths in the file', () => {
  it('resolve relative data_dir and socket against the file directory', () => {
    const config = parse(
      'data_dir = "state"\n[control]\nsocket = "../run/nm.sock"\n',
      '/opt/nm/etc/nearmesh.toml',
    );
    expect(config.dataDir).toBe('/opt/nm/etc/state');
    expect(config.control.socketPath).toBe('/opt/nm/run/nm.sock');
  });

  it('put the default socket inside a configured data_dir', () => {
    expect(parse('data_dir = "/srv/nm"\n').control.socketPath).toBe('/srv/nm/control.sock');
    expect(parse('data_dir = "d"\n', '/opt/x.toml').control.socketPath).toBe('/opt/d/control.sock');
  });

  it('keep absolute paths and expand ~', () => {
    expect(parse('data_dir = "/data"\n[control]\nsocket = "/run/nearmesh.sock"\n').control.socketPath).toBe(
      '/run/nearmesh.sock',
    );
    expect(parse('data_dir = "~/nm"\n').dataDir).toBe('/home/pi/nm');
  });

  it('resolve a relative console serial path too', () => {
    expect(parse('[console]\nserial = "ttyA"\n', '/tmp/lab/a.toml').console.serial).toBe('/tmp/lab/ttyA');
  });

  it('take a console password hash as mosquitto_passwd writes it', () => {
    const hash =
      '$7$101$zm1OLFE2GNDUxHAH$ObQU6TUIoplqmypW5MHrubOEAvkcBZKsdKTflpsQLMOXiEhHP2zbGB2DV/m921YWnVSD6wVH9LOjKPzHL1kyPQ==';
    const config = parse(`[console]\npassword = "${hash}"\nallow_unauthenticated = true\n`);
    expect(config.console).toMatchObject({ password: hash, allowUnauthenticated: true });
  });
});

describe('values that are accepted', () => {
  it('port 0 on listeners (ephemeral, for tests)', () => {
    const config = parse('[wifi]\nlisten = "127.0.0.1:0"\n[mqtt]\nlisten = "127.0.0.1:0"\n');
    expect(config.wifi.listen).toEqual({ host: '127.0.0.1', port: 0 });
    expect(config.mqtt.listen).toEqual({ host: '127.0.0.1', port: 0 });
  });

  it('BLE adapters, enabled modes and dotted keys', () => {
    const config = parse('ble.enabled = true\nble.peripheral = "uart:/tmp/pty-a"\nble.central = "hci12"\n');
    expect(config.ble).toEqual({
      enabled: true,
      peripheral: { kind: 'uart', path: '/tmp/pty-a' },
      central: { kind: 'hci', index: 12 },
      maxLinks: 4,
    });
  });

  it('duplicate discovery methods collapse', () => {
    expect(parse('[wifi]\ndiscovery = ["mdns", "mdns"]\n').wifi.discovery).toEqual(['mdns']);
  });

  it('a mesh key with its single "=" padding', () => {
    expect(parse(`mesh_key = "${KEY_TEXT}="\n`).meshKey).toEqual(KEY_BYTES);
  });
});

describe('mesh_key', () => {
  it('of the wrong length names the key and never echoes it', () => {
    const short = KEY_TEXT.slice(0, 40);
    const error = configError(`name = "pi"\nmesh_key = "${short}"\n`);
    expect(error.key).toBe('mesh_key');
    expect(error.line).toBe(2);
    expect(error.message).toBe(
      `config error in ${FILE} line 2: mesh_key: expected base64url of exactly 32 bytes (43 characters, as "nearmesh keygen" prints), got a 40-character string`,
    );
    expect(error.message).not.toContain(short);
  });

  it('in standard base64 says what to change', () => {
    const error = configError(`mesh_key = "${'a+b/'.repeat(10)}abc"\n`);
    expect(error.message).toContain(
      'expected base64url, which uses "-" and "_" where base64 uses "+" and "/"',
    );
  });

  it('with stray bits in the last character is refused', () => {
    // "h" and "f" decode to the same 32 bytes in Node; only the canonical spelling is a key.
    expect(configError(`mesh_key = "${KEY_TEXT.slice(0, -1)}h"\n`).message).toContain('canonical base64url');
  });

  it('generateMeshKey and parseMeshKey round-trip 32 bytes', () => {
    const text = generateMeshKey();
    expect(text).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(parseMeshKey(text)).toHaveLength(32);
    expect(parseMeshKey(` ${KEY_TEXT}\n`)).toEqual(KEY_BYTES);
    expect(generateMeshKey()).not.toBe(text);
  });

  it('parseMeshKey throws a MeshKeyError without the key in it', () => {
    const bad = 'c2VjcmV0LXNlY3JldA';
    expect(() => parseMeshKey(bad)).toThrow(MeshKeyError);
    expect(() => parseMeshKey(bad)).toThrow(
      /^invalid mesh key: expected base64url of exactly 32 bytes .*got 18 characters$/,
    );
    expect(() => parseMeshKey(bad)).not.toThrow(bad);
  });
});

describe('loadMeshKey / saveMeshKey', () => {
  it('finds no key in a fresh data_dir, and makes none', async () => {
    const dataDir = join(temp, 'fresh', 'data');
    expect(await loadMeshKey(dataDir)).toBeUndefined();
    await expect(stat(join(dataDir, 'mesh.key'))).rejects.toThrow(/ENOENT/);
  });

  it('saves a 0600 mesh.key (and data_dir) that reads back as the same key', async () => {
    const dataDir = join(temp, 'fresh', 'data');
    await saveMeshKey(dataDir, KEY_BYTES);
    const file = join(dataDir, 'mesh.key');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readFile(file, 'utf8')).toBe(`${KEY_TEXT}\n`);
    expect(await loadMeshKey(dataDir)).toEqual(KEY_BYTES);
  });

  it('reads a key an operator put there', async () => {
    await writeFile(join(temp, 'mesh.key'), `${KEY_TEXT}\n`, { mode: 0o600 });
    expect(await loadMeshKey(temp)).toEqual(KEY_BYTES);
  });

  it('names a damaged mesh.key instead of replacing it', async () => {
    await mkdir(join(temp, 'd'));
    await writeFile(join(temp, 'd', 'mesh.key'), 'not a key\n');
    await expect(loadMeshKey(join(temp, 'd'))).rejects.toThrow(
      `${join(temp, 'd', 'mesh.key')}: invalid mesh key`,
    );
    expect(await readFile(join(temp, 'd', 'mesh.key'), 'utf8')).toBe('not a key\n');
  });
});

describe('host:port', () => {
  it.each([
    ['0.0.0.0:7450', '0.0.0.0', 7450],
    ['localhost:1', 'localhost', 1],
    ['pi-shed.local:65535', 'pi-shed.local', 65535],
    ['example.com.:80', 'example.com.', 80],
    ['[::1]:7450', '::1', 7450],
    ['[::]:7450', '::', 7450],
    ['[fe80::1%eth0]:7450', 'fe80::1%eth0', 7450],
  ])('parses %s', (text, host, port) => {
    const address = parseHostPort(text);
    expect(address).toEqual({ host, port });
    expect(formatHostPort(address)).toBe(text);
  });

  it.each([
    ['0.0.0.0', 'expected "host:port"'],
    [':7450', 'expected a host before the ":"'],
    ['::1:7450', 'expected an IPv6 address in brackets'],
    ['[::1]', 'expected "[IPv6]:port"'],
    ['[::1]7450', 'expected "[IPv6]:port"'],
    ['[nothost]:7450', 'expected an IPv6 address inside the brackets'],
    ['bad_host:7450', 'expected an IPv4 address, "[IPv6]" or a hostname'],
    ['-pi:7450', 'expected an IPv4 address, "[IPv6]" or a hostname'],
    ['256.1.1.1:7450', 'expected an IPv4 address, "[IPv6]" or a hostname'],
    ['host:', 'expected a port in 1..65535'],
    ['host:0', 'expected a port in 1..65535'],
    ['host:65536', 'expected a port in 1..65535'],
    ['host:-1', 'expected a port in 1..65535'],
    ['host:80a', 'expected a port in 1..65535'],
    ['host: 80', 'expected a port in 1..65535'],
  ])('rejects %s', (text, expected) => {
    expect(() => parseHostPort(text)).toThrow(AddressError);
    expect(() => parseHostPort(text)).toThrow(`invalid address ${JSON.stringify(text)}: ${expected}`);
  });

  it('allows port 0 only when asked (listeners)', () => {
    expect(parseHostPort('127.0.0.1:0', { allowPortZero: true })).toEqual({ host: '127.0.0.1', port: 0 });
    expect(() => parseHostPort('127.0.0.1:0')).toThrow(/1\.\.65535/);
  });
});

describe('BLE adapter specs', () => {
  it.each(['hci0', 'hci3', 'uart:/dev/ttyAMA0', 'uart:/dev/ttyAMA0@1000000', 'uart:/tmp/a@b'])(
    'round-trips %s',
    (text) => {
      const result = checkBleAdapter(text);
      expect(result.ok).toBe(true);
      if (result.ok) expect(formatBleAdapter(result.value)).toBe(text);
    },
  );

  it.each(['hci', 'hcix', 'usb0', 'uart:', 'uart:/', 'uart:dev/tty', 'uart:/dev/tty@0'])(
    'rejects %s',
    (text) => {
      expect(checkBleAdapter(text).ok).toBe(false);
    },
  );
});

describe('board defaults', () => {
  const pi4 = {
    ble: { peripheral: 'hci0', central: 'uart:/dev/ttyAMA1', maxLinks: 6 },
    mesh: { relay: false },
  };

  it('fill in the BLE adapters, the link limit and relaying when the file leaves them out', () => {
    const config = parseConfigText('', FILE, { ...ENV, board: pi4 });
    expect(config.ble.central).toEqual({ kind: 'uart', path: '/dev/ttyAMA1' });
    expect(config.ble.maxLinks).toBe(6);
    expect(config.mesh.relay).toBe(false);
  });

  it('give way to what the file says', () => {
    const text = '[ble]\ncentral = "hci1"\nmax_links = 2\n[mesh]\nrelay = true\n';
    const config = parseConfigText(text, FILE, { ...ENV, board: pi4 });
    expect(config.ble.central).toEqual({ kind: 'hci', index: 1 });
    expect(config.ble.maxLinks).toBe(2);
    expect(config.mesh.relay).toBe(true);
  });
});
