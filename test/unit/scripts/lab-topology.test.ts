// The lab's topologies are plain data: node and link counts, who links to whom, and the sizes refused.
import { describe, expect, it } from 'vitest';
import {
  chain,
  geometric,
  grid,
  hopsFrom,
  isConnected,
  MAX_NODES,
  ring,
  TopologyError,
  topologyFromSpec,
  validateTopology,
} from '../../../scripts/lab/topology.js';

const degree = (edges: [string, string][], node: string) =>
  edges.filter(([a, b]) => a === node || b === node).length;

describe('lab topologies', () => {
  it('chain(n) links n nodes in a line with n-1 links', () => {
    expect(chain(3)).toEqual({
      nodes: ['n1', 'n2', 'n3'],
      edges: [
        ['n1', 'n2'],
        ['n2', 'n3'],
      ],
    });
    const long = chain(10);
    expect(long.edges).toHaveLength(9);
    expect(degree(long.edges, 'n1')).toBe(1);
    expect(degree(long.edges, 'n5')).toBe(2);
  });

  it('ring(n) closes the chain: n links, every node has two neighbours', () => {
    const closed = ring(5);
    expect(closed.nodes).toHaveLength(5);
    expect(closed.edges).toHaveLength(5);
    expect(closed.edges).toContainEqual(['n5', 'n1']);
    for (const node of closed.nodes) expect(degree(closed.edges, node)).toBe(2);
  });

  it('grid(rows, cols) has rows*(cols-1) + cols*(rows-1) links', () => {
    const square = grid(3, 3);
    expect(square.nodes).toHaveLength(9);
    expect(square.nodes[0]).toBe('r1c1');
    expect(square.edges).toHaveLength(12);
    expect(degree(square.edges, 'r1c1')).toBe(2);
    expect(degree(square.edges, 'r2c2')).toBe(4);
    expect(degree(square.edges, 'r1c2')).toBe(3);
    expect(grid(2, 4).edges).toHaveLength(2 * 3 + 4 * 1);
    // One row is a line.
    expect(grid(1, 4).edges).toEqual([
      ['r1c1', 'r1c2'],
      ['r1c2', 'r1c3'],
      ['r1c3', 'r1c4'],
    ]);
    for (const topology of [chain(7), ring(7), grid(4, 5)])
      expect(() => validateTopology(topology)).not.toThrow();
  });

  it('refuses sizes out of range with a TopologyError', () => {
    for (const build of [
      () => chain(1),
      () => chain(MAX_NODES + 1),
      () => chain(2.5),
      () => ring(2),
      () => grid(1, 1),
      () => grid(0, 3),
      () => grid(9, 9),
    ]) {
      expect(build).toThrow(TopologyError);
    }
    expect(() => chain(1)).toThrow(/chain length must be an integer from 2 to 64, got 1/);
  });

  it('reads the CLI words: chain 4, ring 5, grid 3, grid 2x4', () => {
    expect(topologyFromSpec('chain', '4')).toEqual(chain(4));
    expect(topologyFromSpec('ring', '5')).toEqual(ring(5));
    expect(topologyFromSpec('grid', '3')).toEqual(grid(3, 3));
    expect(topologyFromSpec('grid', '2x4')).toEqual(grid(2, 4));
    expect(() => topologyFromSpec('star', '4')).toThrow(/unknown topology "star"/);
    expect(() => topologyFromSpec('chain', 'x')).toThrow(TopologyError);
    expect(() => topologyFromSpec('grid', '3by3')).toThrow(/RxC/);
  });

  it('drops geometric meshes at random but the same every time, connected, with radio-like degrees', () => {
    const mesh = geometric(30);
    expect(geometric(30)).toEqual(mesh);
    expect(mesh.nodes).toHaveLength(30);
    expect(mesh.nodes[29]).toBe('n30');
    expect(isConnected(mesh)).toBe(true);
    expect(() => validateTopology(mesh)).not.toThrow();
    const meanDegree = (2 * mesh.edges.length) / mesh.nodes.length;
    expect(meanDegree).toBeGreaterThan(4);
    expect(meanDegree).toBeLessThan(12);
    // Seed 1 gives a graph that is not connected: the next seed is drawn, so seed 2 gives the same mesh.
    expect(geometric(30, 8, 2)).toEqual(mesh);
    expect(geometric(30, 8, 10)).not.toEqual(mesh);
    expect(topologyFromSpec('geometric', '30')).toEqual(mesh);
    expect(() => topologyFromSpec('geometric', '65')).toThrow(/from 2 to 64/);
    expect(isConnected({ nodes: ['a', 'b', 'c'], edges: [['a', 'b']] })).toBe(false);
    expect(hopsFrom(chain(4), 'n2')).toEqual(
      new Map([
        ['n2', 0],
        ['n1', 1],
        ['n3', 1],
        ['n4', 2],
      ]),
    );
  });

  it('validates hand-written topologies', () => {
    const nodes = ['a', 'b'];
    expect(() => validateTopology({ nodes, edges: [['a', 'c']] })).toThrow(/no node "c"/);
    expect(() => validateTopology({ nodes, edges: [['a', 'a']] })).toThrow(/itself/);
    expect(() =>
      validateTopology({
        nodes,
        edges: [
          ['a', 'b'],
          ['b', 'a'],
        ],
      }),
    ).toThrow(/twice/);
    expect(() => validateTopology({ nodes: ['a', 'a'], edges: [] })).toThrow(/appears twice/);
    expect(() => validateTopology({ nodes: ['A-1', 'b'], edges: [] })).toThrow(/node name/);
  });
});
