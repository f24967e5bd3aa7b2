import { describe, expect, it } from 'vitest';
import { isValidTopicFilter, isValidTopicName, topicMatches } from '../../../agent/core/topic-match.js';

describe('topicMatches', () => {
  it.each([
    ['a/b/c', 'a/b/c', true],
    ['a/b/c', 'a/b', false],
    ['a/+/c', 'a/b/c', true],
    ['a/+/c', 'a/b/d', false],
    ['a/+', 'a/', true],
    ['+/+', '/x', true],
    ['+', 'a/b', false],
    ['a/#', 'a', true],
    ['a/#', 'a/b/c', true],
    ['a/#', 'ab/c', false],
    ['#', 'a/b', true],
    ['#', '/', true],
    ['+/b', 'a/b/c', false],
    ['a/b', 'A/b', false],
    ['#', '$SYS/x', false],
    ['+/x', '$SYS/x', false],
    ['$SYS/#', '$SYS/x', true],
    ['$SYS/+', '$SYS/x', true],
    ['a/+/#', 'a/b', true],
  ])('%s matches %s: %s', (filter, topic, expected) => {
    expect(topicMatches(filter, topic)).toBe(expected);
  });
});

describe('topic validation', () => {
  it('accepts names without wildcards or NUL', () => {
    for (const name of ['a', 'a/b', '/', 'a//b', '$SYS/x', 'ünï/cødé', 'emoji/😀']) {
      expect(isValidTopicName(name)).toBe(true);
    }
  });

  it('rejects empty names, wildcards, NUL, lone surrogates and over-long names', () => {
    for (const name of ['', 'a/+', 'a/#', 'a+b', 'a\u0000b', 'a\uD800b', 'x'.repeat(65_536)]) {
      expect(isValidTopicName(name)).toBe(false);
    }
  });

  it('accepts well-placed wildcards in filters', () => {
    for (const filter of ['#', '+', 'a/+/c', 'a/#', '+/+/#', '/', '$SYS/#']) {
      expect(isValidTopicFilter(filter)).toBe(true);
    }
  });

  it('rejects misplaced wildcards, NUL and empty filters', () => {
    for (const filter of ['', 'a/#/b', 'a#', 'a/b#', 'a+/b', 'a/+b', '#/a', 'a\u0000']) {
      expect(isValidTopicFilter(filter)).toBe(false);
    }
  });
});
