// The console's trace and call commands without agents: trace lines decoded from link frames (never the
// payload's bytes), the JSON word of a call, durations and the stop of a running trace.
import { describe, expect, it } from 'vitest';
import type { CallRequest, TraceEvent } from '../../../agent/api.js';
import {
  type ConsoleContext,
  completeConsoleLine,
  runConsoleLine,
  splitArguments,
} from '../../../agent/console/commands.js';
import { formatCallResults, formatTraceLine } from '../../../agent/console/format.js';
import type { LinkFrame } from '../../../agent/links/link-manager.js';
import { toTraceEvent } from '../../../agent/links/link-trace.js';
import { encodeCoordination } from '../../../agent/protocol/coordination.js';
import { encodeQueued } from '../../../agent/protocol/queued.js';
import { encodeStream } from '../../../agent/protocol/stream.js';
import { encodeTransfer } from '../../../agent/protocol/transfer.js';
import { until } from '../../support/until.js';

const AT = Date.parse('2026-11-25T14:32:17.123Z');
const A = '0123456789abcdef';
const B = 'fedcba9876543210';

function frame(message: LinkFrame['message'], direction: 'in' | 'out' = 'out'): LinkFrame {
  return { peer: B, peerName: 'bravo', medium: 'wifi', direction, atMs: AT, message };
}

describe('trace lines', () => {
  it('shows time, direction, medium, type, id and flags of link-local messages', () => {
    expect(formatTraceLine(toTraceEvent(frame({ type: 'ping', id: 4 })))).toBe(
      '14:32:17.123 → wifi PING id=4\n',
    );
    expect(formatTraceLine(toTraceEvent(frame({ type: 'pong', id: 4 }, 'in')))).toBe(
      '14:32:17.123 ← wifi PONG id=4\n',
    );
    const data = toTraceEvent(
      frame({ type: 'data', id: 7, ackRequested: true, payload: Buffer.from('secret words') }, 'in'),
    );
    expect(formatTraceLine(data)).toBe('14:32:17.123 ← wifi DATA id=7 ack size=12\n');
    expect(formatTraceLine(toTraceEvent(frame({ type: 'close', code: 1, reason: 'duplicate link' })))).toBe(
      '14:32:17.123 → wifi CLOSE code=1 "duplicate link"\n',
    );
  });

  it('shows the route of routed messages and the coordination kind of system DATA, never payload bytes', () => {
    const payload = encodeCoordination({ kind: 'time-request', t1: AT });
    const event = toTraceEvent(
      frame({
        type: 'data',
        id: 9,
        ackRequested: false,
        payload,
        system: true,
        flood: true,
        route: { source: A, destination: B, ttlHops: 3 },
      }),
    );
    expect(event).toMatchObject({ type: 'DATA', size: payload.length, coordination: 'time-request' });
    expect(formatTraceLine(event)).toBe(
      `14:32:17.123 → wifi DATA id=9 flood system ${A}→${B} ttl=3 size=${payload.length} time-request\n`,
    );
    const garbage = toTraceEvent(
      frame({ type: 'data', id: 1, ackRequested: true, payload: Buffer.from('xx'), system: true }),
    );
    expect(garbage.coordination).toBe('malformed');
    // Reliable messages, transfers and streams are named by their own kinds.
    const id16 = new Uint8Array(16).fill(7);
    const kindOf = (systemPayload: Uint8Array): string | undefined =>
      toTraceEvent(frame({ type: 'data', id: 3, ackRequested: true, payload: systemPayload, system: true }))
        .coordination;
    expect(
      kindOf(encodeQueued({ kind: 'queued', epoch: '0123456789abcdef', seq: 1, payload: Buffer.from('x') })),
    ).toBe('queued');
    expect(kindOf(encodeTransfer({ kind: 'done', transferId: id16, sha256: new Uint8Array(32) }))).toBe(
      'done',
    );
    expect(kindOf(encodeStream({ kind: 'credit', streamId: id16, upTo: 1 }))).toBe('credit');
    const ack = toTraceEvent(
      frame({ type: 'ack', id: 9, route: { source: B, destination: A, ttlHops: 15 } }),
    );
    expect(formatTraceLine(ack)).toBe(`14:32:17.123 → wifi ACK id=9 ${B}→${A} ttl=15\n`);
    const text = JSON.stringify(
      toTraceEvent(frame({ type: 'data', id: 2, ackRequested: true, payload: Buffer.from('secret') })),
    );
    expect(text).not.toContain('secret');
    expect(text).not.toContain(Buffer.from('secret').toString('base64'));
  });
});

function fakeContext(overrides: Partial<ConsoleContext> = {}): ConsoleContext & { calls: CallRequest[] } {
  const calls: CallRequest[] = [];
  return {
    calls,
    id: () => ({ id: A, name: 'alpha' }),
    status: () => {
      throw new Error('not in this test');
    },
    peers: () => [
      {
        id: B,
        name: 'bravo',
        state: 'connected',
        medium: 'wifi',
        media: ['wifi'],
        address: '127.0.0.1:1',
        direction: 'outbound',
        addresses: [],
        rtt_ms: 1,
        rssi_dbm: null,
        last_seen: '',
        connected_since: '',
        hops: 1,
        next_hop: null,
        name_conflict: false,
      },
    ],
    routes: () => [],
    resolvers: () => [],
    send: async (peer, payloads, options) => ({
      peer,
      seq: 1,
      last_seq: 1,
      count: payloads.length,
      acknowledged: options.wait,
    }),
    multicast: () => ({ links: 1 }),
    logLevel: () => 'info',
    call: async (request) => {
      calls.push(request);
      return [
        {
          peer: B,
          name: 'bravo',
          status: 'ok',
          result: { echoed: request.args },
          fired_at: null,
          fired_at_ms: null,
        },
      ];
    },
    actions: () => [
      { peer: A, name: 'alpha', action: 'beep' },
      { peer: B, name: 'bravo', action: 'light.set' },
      { peer: B, name: 'bravo', action: 'greet' },
    ],
    groups: () => [{ name: 'hall', members: [A, B] }],
    trace: () => {
      throw new Error('not in this test');
    },
    ...overrides,
  };
}

describe('call on the console', () => {
  it('takes a JSON word with spaces and quotes, durations, and prints the CLI table', async () => {
    expect(splitArguments('call bravo light.set {"on": true, "name": "a b"} --in 1.5s')).toEqual([
      'call',
      'bravo',
      'light.set',
      '{"on": true, "name": "a b"}',
      '--in',
      '1.5s',
    ]);
    const context = fakeContext();
    const output = await runConsoleLine('call bravo light.set {"on": true} --in 1.5s --timeout 2s', context);
    expect(context.calls[0]).toMatchObject({
      target: 'bravo',
      action: 'light.set',
      args: { on: true },
      in_ms: 1500,
      timeout_ms: 2000,
    });
    expect(output).toBe(
      formatCallResults([
        {
          peer: B,
          name: 'bravo',
          status: 'ok',
          result: { echoed: { on: true } },
          fired_at: null,
          fired_at_ms: null,
        },
      ]),
    );
    expect(await runConsoleLine('call bravo greet', context)).toContain('{"echoed":{}}');
    expect(await runConsoleLine('call bravo greet [1]', context)).toMatch(
      /^nearmesh: arguments must be a JSON object/,
    );
    expect(await runConsoleLine('call bravo greet --in soon', context)).toMatch(
      /^nearmesh: invalid duration "soon"/,
    );
    expect(await runConsoleLine('call bravo greet --timeout 0ms', context)).toMatch(/^nearmesh: --timeout: /);
    expect(await runConsoleLine('call bravo', context)).toMatch(/^nearmesh: usage: call/);
    expect(formatCallResults([], 'group:attic')).toBe('no agent offers group:attic\n');
  });

  it('completes targets, then the actions that target offers', () => {
    const context = fakeContext();
    expect(completeConsoleLine('call ', context)[0]).toEqual(
      expect.arrayContaining(['bravo', B, 'alpha', 'group:hall', 'all']),
    );
    expect(completeConsoleLine('call g', context)).toEqual([['group:hall'], 'g']);
    expect(completeConsoleLine('call bravo ', context)).toEqual([['greet', 'light.set'], '']);
    expect(completeConsoleLine('call bravo gr', context)).toEqual([['greet'], 'gr']);
    expect(completeConsoleLine('call group:hall ', context)[0]).toEqual(['beep', 'greet', 'light.set']);
    expect(completeConsoleLine('call alpha ', context)[0]).toEqual(['beep']);
  });
});

describe('trace on the console', () => {
  const event: TraceEvent = {
    at: '2026-11-25T14:32:17.123Z',
    peer: B,
    peer_name: 'bravo',
    direction: 'in',
    medium: 'wifi',
    type: 'PING',
    id: 1,
    flags: [],
  };

  it('writes each frame as it comes and stops when aborted, counting the frames shown', async () => {
    let stopped = false;
    let emit: ((event: TraceEvent) => void) | undefined;
    const context = fakeContext({
      trace: (peer, listener) => {
        emit = listener;
        return { peer: B, name: peer, stop: () => (stopped = true) };
      },
    });
    const written: string[] = [];
    const controller = new AbortController();
    const done = runConsoleLine('trace bravo 300', context, {
      write: (text) => written.push(text),
      signal: controller.signal,
    });
    await until('the trace started', () => emit !== undefined);
    emit?.(event);
    emit?.({ ...event, direction: 'out', type: 'PONG' });
    controller.abort();
    expect(await done).toBe('2 frames shown\n');
    expect(stopped).toBe(true);
    expect(written).toEqual([
      `tracing bravo (${B}) for 300 s; Ctrl-C or Enter stops\n`,
      '14:32:17.123 ← wifi PING id=1\n',
      '14:32:17.123 → wifi PONG id=1\n',
    ]);
  });

  it('ends after the seconds given and refuses more than 300', async () => {
    const context = fakeContext({ trace: (peer) => ({ peer: B, name: peer, stop: () => {} }) });
    const started = Date.now();
    expect(await runConsoleLine('trace bravo 1', context)).toBe(
      `tracing bravo (${B}) for 1 s; Ctrl-C or Enter stops\n0 frames shown\n`,
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(990);
    expect(await runConsoleLine('trace bravo 301', context)).toMatch(/^nearmesh: seconds must be/);
    expect(await runConsoleLine('trace', context)).toMatch(/^nearmesh: usage: trace/);
    expect(completeConsoleLine('trace b', context)).toEqual([['bravo'], 'b']);
  });
});
