// One side of the mDNS system tests, run inside a network namespace (a vitest worker cannot enter one).
// It uses the built dist/ (npm test builds first). Events go out as JSON lines; commands come in on
// stdin: "stop", "dial <address>" (the link stays open; its close is reported), "rotate", "ignored", and with
// option `manual` (the resolver waits to be told) "start-resolver" and "stop-resolver".
// Modes: by default an MdnsResolver (options: peerId, meshKey as hex, interfaceAddress, rotationMs, port of
// its TcpTransport) over a TcpTransport; "v1" announces what a protocol version 1 agent did (its name and peer id in the clear);
// "browser" is a plain mDNS listener without the key that reports every record it hears.
import { createInterface } from 'node:readline';
import Bonjour from 'bonjour-service';
import { MdnsResolver } from '../../../dist/transports/wifi/mdns-resolver.js';
import { TcpTransport } from '../../../dist/transports/wifi/tcp-transport.js';

const options = JSON.parse(process.env.NEARMESH_TEST_OPTIONS);
const say = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);
const commands = {};

if (options.mode === 'v1' || options.mode === 'browser') {
  const bonjour = new Bonjour({ interface: options.interfaceAddress, bind: '0.0.0.0' }, (e) =>
    say({ event: 'warning', message: String(e) }),
  );
  if (options.mode === 'v1') {
    bonjour.publish({
      name: 'kitchen-56475aa7',
      type: 'nearmesh',
      port: 9,
      host: 'nearmesh-56475aa75463474c.local',
      txt: { id: '56475aa75463474c', v: '1' },
      probe: false,
    });
  } else {
    // multicast-dns underneath: every answer and additional record of every response, as heard, bytes as text.
    const asText = (_key, value) =>
      value?.type === 'Buffer' && Array.isArray(value.data)
        ? Buffer.from(value.data).toString('latin1')
        : value;
    bonjour.server.mdns.on('response', (packet) => {
      for (const { name, type, data } of [...packet.answers, ...packet.additionals]) {
        say(JSON.parse(JSON.stringify({ event: 'record', name, type, data }, asText)));
      }
    });
    // Asks, as avahi-browse or any DNS-SD browser would: every agent answers with all its records.
    bonjour.find({ type: 'nearmesh' });
  }
  commands.stop = () => new Promise((resolve) => bonjour.unpublishAll(() => bonjour.destroy(resolve)));
  say({ event: 'started' });
} else {
  const transport = new TcpTransport({ listen: { host: '0.0.0.0', port: options.port ?? 0 } });
  transport.on('link', (link) =>
    link.on('frame', (frame) => say({ event: 'frame', text: Buffer.from(frame).toString() })),
  );
  await transport.start();
  const { meshKey, manual, port: _port, ...resolverOptions } = options;
  const resolver = new MdnsResolver({
    ...resolverOptions,
    meshKeys: () => [Buffer.from(meshKey, 'hex')],
    port: transport.address().port,
  });
  for (const event of ['found', 'lost']) resolver.on(event, (candidate) => say({ event, candidate }));
  resolver.on('warning', (error) => say({ event: 'warning', code: error.code, message: error.message }));
  if (manual !== true) await resolver.start();
  commands['start-resolver'] = async () => {
    await resolver.start();
    say({ event: 'resolver-started', name: resolver.name });
  };
  commands['stop-resolver'] = async () => {
    await resolver.stop();
    say({ event: 'resolver-stopped' });
  };
  commands.stop = async () => {
    await resolver.stop();
    await transport.stop();
  };
  commands.rotate = async () => {
    await resolver.rotate();
    say({ event: 'rotated', instanceName: resolver.instanceName });
  };
  commands.ignored = () => say({ event: 'ignored', count: resolver.ignoredCount });
  commands.dial = async (address) => {
    try {
      const link = await transport.dial(address, { timeoutMs: 3000 });
      link.on('close', () => say({ event: 'link-closed', address }));
      link.send(Buffer.from(`hello from ${options.peerId}`));
      await link.drained();
      say({ event: 'dialed', address });
    } catch (error) {
      say({ event: 'dial-failed', address, message: error.message });
    }
  };
  say({ event: 'started', port: transport.address().port, instanceName: resolver.instanceName });
}

for await (const line of createInterface({ input: process.stdin })) {
  const [command, argument] = line.split(' ');
  if (command === 'stop') {
    await commands.stop();
    say({ event: 'stopped' });
    process.exit(0);
  }
  void commands[command]?.(argument);
}
