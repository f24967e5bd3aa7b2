// Runs the shared FrameLink contract against each implementation: TCP on loopback and the memory pair.
// A new medium joins by adding one harness here.
import type { FrameLink } from '../../../transports/transport.js';
import { TcpTransport } from '../../../transports/wifi/tcp-transport.js';
import { memoryLinkPair } from '../../support/memory-link.js';
import { describeFrameLinkContract, type LinkPair } from './transport-contract.js';

const tcpTransports: TcpTransport[] = [];

describeFrameLinkContract({
  name: 'TcpTransport on 127.0.0.1',
  medium: 'wifi',
  hasBackPressure: true,
  async makePair({ maxFrameBytes, responderMaxFrameBytes }): Promise<LinkPair> {
    const server = new TcpTransport({
      listen: { host: '127.0.0.1', port: 0 },
      maxFrameBytes: responderMaxFrameBytes ?? maxFrameBytes,
      closeGraceMs: 200,
    });
    const client = new TcpTransport({ listen: false, maxFrameBytes, closeGraceMs: 200 });
    tcpTransports.push(server, client);
    await server.start();
    await client.start();
    const accepted = new Promise<FrameLink>((resolve) => server.once('link', resolve));
    const initiator = await client.dial(`127.0.0.1:${server.address()?.port}`);
    return { initiator, responder: await accepted };
  },
  async cleanup() {
    await Promise.all(tcpTransports.splice(0).map((t) => t.stop()));
  },
});

describeFrameLinkContract({
  name: 'memoryLinkPair',
  medium: 'memory',
  hasBackPressure: false,
  async makePair({ maxFrameBytes, responderMaxFrameBytes }): Promise<LinkPair> {
    const [initiator, responder] = memoryLinkPair(maxFrameBytes, responderMaxFrameBytes);
    return { initiator, responder };
  },
  async cleanup() {},
});
