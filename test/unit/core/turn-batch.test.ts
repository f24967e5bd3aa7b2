import { describe, expect, it } from 'vitest';
import { TurnBatch } from '../../../agent/core/turn-batch.js';

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe('TurnBatch', () => {
  it('hands over everything added in one turn once, in order, at the end of that turn', async () => {
    const writes: number[][] = [];
    const batch = new TurnBatch<number>({
      max: 100,
      write: (items) => writes.push([...items]),
      onError: () => {},
    });
    for (const item of [1, 2, 3]) batch.add(item);
    expect(writes).toEqual([]);
    expect(batch.size).toBe(3);
    await nextTurn();
    expect(writes).toEqual([[1, 2, 3]]);
    batch.add(4);
    await nextTurn();
    expect(writes).toEqual([[1, 2, 3], [4]]);
  });

  it('hands over at once when max items wait, and flush() hands over what waits now', async () => {
    const writes: number[][] = [];
    const batch = new TurnBatch<number>({
      max: 3,
      write: (items) => writes.push([...items]),
      onError: () => {},
    });
    for (const item of [1, 2, 3, 4]) batch.add(item);
    expect(writes).toEqual([[1, 2, 3]]);
    batch.flush();
    expect(writes).toEqual([[1, 2, 3], [4]]);
    await nextTurn();
    expect(writes).toHaveLength(2); // nothing left for the end of the turn
  });

  it('reports a write that throws, and goes on with the next batch', async () => {
    const errors: unknown[] = [];
    const written: number[] = [];
    const batch = new TurnBatch<number>({
      max: 10,
      write: (items) => {
        if (items.includes(1)) throw new Error('disk full');
        written.push(...items);
      },
      onError: (error) => errors.push(error),
    });
    batch.add(1);
    await nextTurn();
    batch.add(2);
    await nextTurn();
    expect(errors).toEqual([new Error('disk full')]);
    expect(written).toEqual([2]);
  });
});
