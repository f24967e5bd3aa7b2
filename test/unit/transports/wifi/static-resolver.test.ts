// The static resolver turns configured `[[peers]] address` entries into Wi-Fi candidates on start.
import { describe, expect, it } from 'vitest';
import { AddressError } from '../../../../agent/core/host-port.js';
import type { PeerCandidate } from '../../../../transports/resolver.js';
import { StaticResolver } from '../../../../transports/wifi/static-resolver.js';

describe('StaticResolver', () => {
  it("emits 'found' for every configured address on start, once", async () => {
    const resolver = new StaticResolver(['10.0.0.2:7450', '[fd00::2]:7450']);
    const found: PeerCandidate[] = [];
    resolver.on('found', (candidate) => found.push(candidate));
    await resolver.start();
    await resolver.start();
    expect(resolver.name).toBe('static');
    expect(found).toEqual([
      { medium: 'wifi', address: '10.0.0.2:7450', source: 'static' },
      { medium: 'wifi', address: '[fd00::2]:7450', source: 'static' },
    ]);
    await resolver.stop();
  });

  it('reports again after a restart', async () => {
    const resolver = new StaticResolver(['10.0.0.2:7450']);
    let count = 0;
    resolver.on('found', () => count++);
    await resolver.start();
    await resolver.stop();
    await resolver.start();
    expect(count).toBe(2);
  });

  it('refuses a malformed address at construction, naming it', () => {
    expect(() => new StaticResolver(['10.0.0.2:7450', 'kitchen'])).toThrow(AddressError);
    expect(() => new StaticResolver(['kitchen'])).toThrow(/"kitchen"/);
  });
});
