// One side of the mDNS system test, run inside a network namespace (a vitest worker cannot enter one).
// It uses the built dist/ (npm test builds first). Events go out as JSON lines; commands come in on
// stdin: "stop", "dial <address>". Mode "rogue" announces a malformed TXT record instead.
import { createInterface } from 'node:readline';
import Bonjour from 'bonjour-service';
import { MdnsResolver } from '../../../dist/transports/wifi/mdns-resolver.js';
import { TcpTransport } from '../../../dist/transports/wifi/tcp-transport.js';

const options = JSON.parse(process.env.NEARMESH_TEST_OPTIONS);
const say = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);
let stop;

if (options.mode === 'rogue') {
  const bonjour = new Bonjour({ interface: options.interfaceAddress, bind: '0.0.0.0' }, (e) =>
    say({ event: 'warning', message: String(e) }),
  );
  bonjour.publish({
    name: 'rogue',
    type: 'nearmesh',
    port: 9,
    host: 'rogue.local',
    txt: { id: 'NOT-A-PEER-ID', v: '1' },
    probe: false,
  });
  stop = () => new Promise((resolve) => bonjour.unpublishAll(() => bonjour.destroy(resolve)));
  say({ event: 'started' });
} else {
  const transport = new TcpTransport({ listen: { host: '0.0.0.0', port: 0 } });
  transport.on('link', (link) =>
    link.on('frame', (frame) => say({ event: 'frame', text: Buffer.from(frame).toString() })),
  );
  await transport.start();
  const resolver = new MdnsResolver({ ...options, port: transport.address().port });
  for (const event of ['found', 'lost']) resolver.on(event, (candidate) => say({ event, candidate }));
  resolver.on('warning', (error) => say({ event: 'warning', code: error.code, message: error.message }));
  await resolver.start();
  stop = async () => {
    await resolver.stop();
    await transport.stop();
  };
  say({ event: 'started', port: transport.address().port, instanceName: resolver.instanceName });
  globalThis.dial = async (address) => {
    try {
      const link = await transport.dial(address, { timeoutMs: 3000 });
      link.send(Buffer.from(`hello from ${options.name}`));
      await link.drained();
      say({ event: 'dialed', address });
    } catch (error) {
      say({ event: 'dial-failed', address, message: error.message });
    }
  };
}

for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'stop') {
    await stop();
    say({ event: 'stopped' });
    process.exit(0);
  }
  if (line.startsWith('dial ')) globalThis.dial(line.slice(5));
}
