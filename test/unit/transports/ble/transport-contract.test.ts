// The shared FrameLink contract (transport-contract.ts) run against GattLink over in-memory GATT pipes, at the
// smallest fragment (ATT MTU 23) and the largest the emulator negotiates (MTU 256), plus BLE-only behaviour.
import { describe, expect, it } from 'vitest';
import { FragmentError } from '../../../../transports/ble/errors.js';
import { GattLink } from '../../../../transports/ble/gatt-link.js';
import { memoryGattPipePair } from '../../../support/memory-gatt-pipe.js';
import {
  describeFrameLinkContract,
  expectSameFrames,
  type LinkPair,
  LinkProbe,
} from '../transport-contract.js';

for (const { maxFragmentBytes, creditWindow } of [
  { maxFragmentBytes: 20, creditWindow: 16 },
  { maxFragmentBytes: 253, creditWindow: 1 },
]) {
  const links: GattLink[] = [];
  describeFrameLinkContract({
    name: `GattLink over memory GATT pipes, ${maxFragmentBytes}-byte fragments, ${creditWindow} credit(s)`,
    medium: 'ble',
    hasBackPressure: true,
    async makePair({ maxFrameBytes, responderMaxFrameBytes }): Promise<LinkPair> {
      const [central, peripheral] = memoryGattPipePair({ maxFragmentBytes, creditWindow });
      const initiator = new GattLink(central, { isInitiator: true, maxFrameBytes });
      const responder = new GattLink(peripheral, {
        isInitiator: false,
        maxFrameBytes: responderMaxFrameBytes ?? maxFrameBytes,
      });
      links.push(initiator, responder);
      return { initiator, responder };
    },
    async cleanup() {
      for (const link of links.splice(0)) link.close();
    },
  });
}

describe('GattLink specifics', () => {
  it('closes with FragmentError when a fragment is lost, and the remote hears the close', async () => {
    const [central, peripheral] = memoryGattPipePair({ maxFragmentBytes: 20 });
    const initiator = new GattLink(central, { isInitiator: true });
    const responder = new GattLink(peripheral, { isInitiator: false });
    const atResponder = new LinkProbe(responder);
    const atInitiator = new LinkProbe(initiator);
    // Drop the second fragment on its way out: the receiver sees a sequence gap.
    const write = central.write.bind(central);
    let written = 0;
    central.write = (fragment) => (++written === 2 ? undefined : write(fragment));
    initiator.send(new Uint8Array(100));
    const error = await atResponder.waitForClose();
    expect(error).toBeInstanceOf(FragmentError);
    expect((error as FragmentError).reason).toBe('sequence-gap');
    expect(atResponder.frames).toEqual([]);
    await atInitiator.waitForClose();
  });

  it('closes with FragmentError(timeout) when a frame stays incomplete', async () => {
    const [central, peripheral] = memoryGattPipePair({ maxFragmentBytes: 20 });
    const initiator = new GattLink(central, { isInitiator: true });
    const responder = new GattLink(peripheral, { isInitiator: false, reassemblyTimeoutMs: 50 });
    const atResponder = new LinkProbe(responder);
    let written = 0;
    const write = central.write.bind(central);
    central.write = (fragment) => (++written > 1 ? new Promise<void>(() => undefined) : write(fragment));
    initiator.send(new Uint8Array(100));
    const started = Date.now();
    const error = await atResponder.waitForClose(2000);
    expect((error as FragmentError).reason).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(1000);
    initiator.close();
  });

  it('applies back-pressure above highWaterBytes and keeps order through a 1 MiB burst', async () => {
    const [central, peripheral] = memoryGattPipePair({ maxFragmentBytes: 253, creditWindow: 1 });
    const initiator = new GattLink(central, { isInitiator: true, highWaterBytes: 4096 });
    const responder = new GattLink(peripheral, { isInitiator: false });
    const atResponder = new LinkProbe(responder);
    const sent: Uint8Array[] = [];
    let refusals = 0;
    for (let i = 0; i < 1024; i++) {
      const frame = new Uint8Array(1024).fill(i & 0xff);
      new DataView(frame.buffer).setUint32(0, i);
      sent.push(frame);
      if (!initiator.send(frame)) {
        refusals++;
        expect(initiator.bufferedBytes).toBeGreaterThanOrEqual(4096);
        await initiator.drained();
        expect(initiator.bufferedBytes).toBe(0);
      }
    }
    expectSameFrames(await atResponder.waitForFrames(sent.length), sent);
    expect(refusals).toBeGreaterThan(100);
    initiator.close();
  });

  it('reports a broken radio link as the close reason on both sides', async () => {
    const [central, peripheral] = memoryGattPipePair({ maxFragmentBytes: 20 });
    const atInitiator = new LinkProbe(new GattLink(central, { isInitiator: true }));
    const atResponder = new LinkProbe(new GattLink(peripheral, { isInitiator: false }));
    const lost = new Error('connection timeout');
    central.breakLink(lost);
    expect(await atInitiator.waitForClose()).toBe(lost);
    expect(await atResponder.waitForClose()).toBe(lost);
  });
});
