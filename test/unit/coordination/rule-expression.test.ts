// Rule conditions: what parses (and how it groups), what is refused and exactly where, the hard limits,
// three-valued evaluation over missing sensors, and fuzzing that nothing but RuleExpressionError escapes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  evaluate,
  MAX_EXPRESSION_DEPTH,
  MAX_EXPRESSION_LENGTH,
  MAX_EXPRESSION_REFERENCES,
  parseRuleExpression,
  RuleExpressionError,
  type RuleNode,
  type SensorLookup,
  type SensorValue,
} from '../../../agent/coordination/rule-expression.js';
import { NearmeshError } from '../../../agent/core/errors.js';
import { refusal } from '../../support/refused.js';

function parseError(text: string): RuleExpressionError {
  return refusal(RuleExpressionError, parseRuleExpression, text);
}

/** A compact rendering of the tree that shows grouping explicitly. */
function shape(node: RuleNode): string {
  switch (node.kind) {
    case 'or':
    case 'and':
      return `${node.kind}(${shape(node.left)}, ${shape(node.right)})`;
    case 'not':
      return `not(${shape(node.operand)})`;
    case 'compare':
      return `[${shape(node.left)} ${node.operator} ${shape(node.right)}]`;
    case 'literal':
      return JSON.stringify(node.value);
    case 'reference':
      return `${node.peer}/${node.sensor}`;
  }
}

const lookupFrom =
  (values: Record<string, SensorValue | undefined>): SensorLookup =>
  (peer, sensor) =>
    values[`${peer}/${sensor}`];

const TERM = 'a sensor reference (peer/sensor), a literal, "not" or "("';
const AFTER_OPERAND = 'a comparison operator, "and", "or" or end of input';
const AFTER_COMPARISON = '"and", "or" or end of input';

describe('parseRuleExpression accepts', () => {
  it.each([
    ['hall-pi/temp > 30', '[hall-pi/temp > 30]'],
    ['kitchen/door == "open" and not hall-pi/motion', 'and([kitchen/door == "open"], not(hall-pi/motion))'],
    ['(a/t >= 20.5 or b/t < -3) and c/on != true', 'and(or([a/t >= 20.5], [b/t < -3]), [c/on != true])'],
    ['a/x or b/x and c/x', 'or(a/x, and(b/x, c/x))'],
    ['a/x and b/x or c/x', 'or(and(a/x, b/x), c/x)'],
    ['a/x or b/x or c/x', 'or(or(a/x, b/x), c/x)'],
    ['not a/x and b/x', 'and(not(a/x), b/x)'],
    ['not a/t > 3', 'not([a/t > 3])'],
    ['not not a/x', 'not(not(a/x))'],
    ['!a/x && b/x || c/x', 'or(and(not(a/x), b/x), c/x)'],
    ['!!a/x', 'not(not(a/x))'],
    ['a/t!=3', '[a/t != 3]'],
    ['a/t>-3', '[a/t > -3]'],
    ['a/t<=-0.5', '[a/t <= -0.5]'],
    ['3 < a/t', '[3 < a/t]'],
    ['a/t == b/t', '[a/t == b/t]'],
    ['true', 'true'],
    ['false or a/x', 'or(false, a/x)'],
    ['a/t > (5)', '[a/t > 5]'],
    ['((a/x))', 'a/x'],
    ['(a/t > 1) == (b/t > 2)', '[[a/t > 1] == [b/t > 2]]'],
    ['a/s == "say \\"hi\\" \\\\o/"', '[a/s == "say \\"hi\\" \\\\o/"]'],
    ['a/s == ""', '[a/s == ""]'],
    ['a/s == "and or not ( ) é"', '[a/s == "and or not ( ) é"]'],
    ['0123abcd/temp.celsius >= 0', '[0123abcd/temp.celsius >= 0]'],
    ['12345678/x == 1', '[12345678/x == 1]'],
    ['node_1.local/sensor-a.b_c == 1', '[node_1.local/sensor-a.b_c == 1]'],
    ['not/and == 1', '[not/and == 1]'],
    ['true/false', 'true/false'],
    ['-a/x', '-a/x'],
    ['  \t a/x \n and\r\nb/x  ', 'and(a/x, b/x)'],
    ['a/x and(b/x)', 'and(a/x, b/x)'],
  ])('%j as %s', (text, expected) => {
    expect(shape(parseRuleExpression(text).root)).toBe(expected);
  });

  it('keeps the text and reads numbers, strings and booleans as typed values', () => {
    const expression = parseRuleExpression('a/n == 007.50 and a/s == "7" and a/b == false');
    expect(expression.source).toBe('a/n == 007.50 and a/s == "7" and a/b == false');
    const values: SensorValue[] = [];
    const collect = (node: RuleNode): void => {
      if (node.kind === 'literal') values.push(node.value);
      if (node.kind === 'and' || node.kind === 'or' || node.kind === 'compare') {
        collect(node.left);
        collect(node.right);
      }
    };
    collect(expression.root);
    expect(values).toEqual([7.5, '7', false]);
  });

  it('records the column each node starts at', () => {
    const root = parseRuleExpression('x/y and (a/t > 3)').root;
    expect(root.kind === 'and' && [root.column, root.left.column, root.right.column]).toEqual([1, 1, 9]);
  });

  it('lists references once each, in order of first appearance', () => {
    const expression = parseRuleExpression('b/t > 1 and a/t > 1 or b/t < 0 or not a/on or b/t.x == 2');
    expect(expression.references()).toEqual([
      { peer: 'b', sensor: 't' },
      { peer: 'a', sensor: 't' },
      { peer: 'a', sensor: 'on' },
      { peer: 'b', sensor: 't.x' },
    ]);
    // A caller mutating the list does not change the expression.
    expression.references().pop();
    expect(expression.references()).toHaveLength(4);
    expect(parseRuleExpression('true').references()).toEqual([]);
  });

  it.each([
    ['a/x&&b/x||!c/x', 'a/x and b/x or not c/x'],
    ['(a/x or b/x) and c/x', '(a/x or b/x) and c/x'],
    ['a/x or (b/x or c/x)', 'a/x or (b/x or c/x)'],
    ['a/x and (b/x and c/x)', 'a/x and (b/x and c/x)'],
    ['((a/x and b/x)) or c/x', 'a/x and b/x or c/x'],
    ['not (a/x or b/x)', 'not (a/x or b/x)'],
    ['not (a/t > 1)', 'not a/t > 1'],
    ['(a/t>1)==(b/t<=2)', '(a/t > 1) == (b/t <= 2)'],
    ['a/n == 1.50', 'a/n == 1.50'],
    ['a/s=="q\\"\\\\"', 'a/s == "q\\"\\\\"'],
  ])('prints %j canonically as %j', (text, canonical) => {
    expect(parseRuleExpression(text).toString()).toBe(canonical);
  });
});

describe('parseRuleExpression refuses', () => {
  it.each([
    ['', 1, TERM, 'end of input'],
    ['   ', 4, TERM, 'end of input'],
    ['a/t >', 6, TERM, 'end of input'],
    ['a/t > > 3', 7, TERM, '">"'],
    ['a/t >= "x"', 8, 'a number or sensor reference for ">="', '"\\"x\\""'],
    ['"x" < a/t', 1, 'a number or sensor reference for "<"', '"\\"x\\""'],
    ['a/on > true', 8, 'a number or sensor reference for ">"', '"true"'],
    ['(a/b > 1) > 2', 1, 'a number or sensor reference for ">"', 'a comparison'],
    ['2 <= (a/x or b/x)', 6, 'a number or sensor reference for "<="', 'an "or" expression'],
    ['5', 1, 'a condition (a comparison, a sensor reference or true/false)', '"5"'],
    ['a/b and 5', 9, 'a condition (a comparison, a sensor reference or true/false)', '"5"'],
    ['"on" or a/b', 1, 'a condition (a comparison, a sensor reference or true/false)', '"\\"on\\""'],
    ['not 1', 5, 'a condition (a comparison, a sensor reference or true/false)', '"1"'],
    ['(5)', 1, 'a condition (a comparison, a sensor reference or true/false)', '"5"'],
    ['a/b == 1 == 2', 10, `${AFTER_COMPARISON} (comparisons do not chain)`, '"=="'],
    ['(a/b == 1 == 2)', 11, '"and", "or" or ")" (comparisons do not chain)', '"=="'],
    ['a/b > 1 c/d', 9, AFTER_COMPARISON, '"c/d"'],
    ['a/', 3, 'a sensor name (letters, digits, "_", "-", dot-separated)', 'end of input'],
    ['a/ == 1', 3, 'a sensor name (letters, digits, "_", "-", dot-separated)', '" "'],
    ['a/.x', 3, 'a sensor name (letters, digits, "_", "-", dot-separated)', '"."'],
    ['a/x..y', 4, 'a sensor name (letters, digits, "_", "-", dot-separated)', '"."'],
    ['a/x. > 1', 4, 'a sensor name (letters, digits, "_", "-", dot-separated)', '"."'],
    ['/x', 1, TERM, '"/"'],
    ['a/b/c', 4, AFTER_OPERAND, '"/"'],
    ['a/b #', 5, AFTER_OPERAND, '"#"'],
    ['a/b c/d', 5, AFTER_OPERAND, '"c/d"'],
    ['a/b AND c/d', 5, AFTER_OPERAND, '"AND"'],
    ['a/b = 3', 5, AFTER_OPERAND, '"="'],
    ['a/b => 3', 5, AFTER_OPERAND, '"="'],
    ['a/b & c/d', 5, AFTER_OPERAND, '"&"'],
    ['a/b)', 4, AFTER_OPERAND, '")"'],
    ['(a/b', 5, 'a comparison operator, "and", "or" or ")"', 'end of input'],
    // A parenthesised comparison may itself be compared: `(a/b > 1) == true`.
    ['((a/b > 1)', 11, 'a comparison operator, "and", "or" or ")"', 'end of input'],
    ['(a/b > 1', 9, '"and", "or" or ")"', 'end of input'],
    ['()', 2, TERM, '")"'],
    ['and', 1, TERM, '"and"'],
    ['AND', 1, TERM, '"AND"'],
    ['a/b and', 8, TERM, 'end of input'],
    ['a/b or or c/d', 8, TERM, '"or"'],
    ['not', 4, TERM, 'end of input'],
    ['a/b == TRUE', 8, TERM, '"TRUE"'],
    ['a/b == open', 8, TERM, '"open"'],
    ["a/b == 'open'", 8, TERM, '"\'"'],
    ['1.5.3 == a/b', 1, TERM, '"1.5.3"'],
    ['a/b == 1.', 8, TERM, '"1."'],
    ['a/b == .5', 8, TERM, '".5"'],
    ['a/b == 1e3', 8, TERM, '"1e3"'],
    ['a/b == -', 8, TERM, '"-"'],
    ['a/b == --1', 8, TERM, '"--1"'],
    ['a/b == +1', 8, TERM, '"+"'],
    ['x/y > 1or x/z', 7, TERM, '"1or"'],
    ['a/b == é', 8, TERM, '"é"'],
    ['a/b + 1 > 2', 5, AFTER_OPERAND, '"+"'],
    ['"abc', 1, "a closing '\"' for this string", 'end of input'],
    ['a/b == "abc', 8, "a closing '\"' for this string", 'end of input'],
    ['"a\\nb" == a/b', 4, "'\"' or '\\' after a backslash", '"n"'],
    ['a/b == "x\\', 11, "'\"' or '\\' after a backslash", 'end of input'],
  ])('%j at column %d', (text, column, expected, found) => {
    const error = parseError(text);
    expect(error).toBeInstanceOf(NearmeshError);
    expect(error.code).toBe('bad-rule-expression');
    expect(error.name).toBe('RuleExpressionError');
    expect({ column: error.column, expected: error.expected, found: error.found }).toEqual({
      column,
      expected,
      found,
    });
    expect(error.message).toBe(`rule expression: expected ${expected} at column ${column}, found ${found}`);
  });

  it('reports the leftmost problem when there are several', () => {
    expect(parseError('a/b > > #').column).toBe(7);
    expect(parseError('a/b # "unterminated').column).toBe(5);
  });
});

describe('limits', () => {
  it(`accepts ${MAX_EXPRESSION_LENGTH} characters and refuses one more`, () => {
    const atLimit = `a/x == "${'y'.repeat(MAX_EXPRESSION_LENGTH - 9)}"`;
    expect(atLimit).toHaveLength(MAX_EXPRESSION_LENGTH);
    expect(() => parseRuleExpression(atLimit)).not.toThrow();
    const error = parseError(`${atLimit} `);
    expect([error.column, error.expected, error.found]).toEqual([
      MAX_EXPRESSION_LENGTH + 1,
      `at most ${MAX_EXPRESSION_LENGTH} characters`,
      `${MAX_EXPRESSION_LENGTH + 1} characters`,
    ]);
  });

  it(`accepts ${MAX_EXPRESSION_DEPTH} nested parentheses and refuses one more, at the first "(" too deep`, () => {
    const nest = (depth: number): string => `${'('.repeat(depth)}a/x${')'.repeat(depth)}`;
    expect(shape(parseRuleExpression(nest(MAX_EXPRESSION_DEPTH)).root)).toBe('a/x');
    const error = parseError(nest(MAX_EXPRESSION_DEPTH + 1));
    expect([error.column, error.expected]).toEqual([
      MAX_EXPRESSION_DEPTH + 1,
      `at most ${MAX_EXPRESSION_DEPTH} levels of nesting`,
    ]);
  });

  it('counts "not" as nesting, together with parentheses', () => {
    expect(() => parseRuleExpression(`${'not '.repeat(MAX_EXPRESSION_DEPTH)}a/x`)).not.toThrow();
    expect(parseError(`${'not '.repeat(MAX_EXPRESSION_DEPTH + 1)}a/x`).column).toBe(
      MAX_EXPRESSION_DEPTH * 4 + 1,
    );
    expect(parseError(`${'!('.repeat(MAX_EXPRESSION_DEPTH / 2)}!a/x${')'.repeat(16)}`).column).toBe(
      MAX_EXPRESSION_DEPTH + 1,
    );
    // Siblings do not add up: depth is how deep, not how many.
    const siblings = Array.from({ length: 40 }, (_, index) => `(not p/s${index % 3})`).join(' or ');
    expect(() => parseRuleExpression(siblings)).not.toThrow();
  });

  it(`accepts ${MAX_EXPRESSION_REFERENCES} distinct references and refuses the next, however often each repeats`, () => {
    const terms = Array.from({ length: MAX_EXPRESSION_REFERENCES }, (_, index) => `p/s${index}`);
    const atLimit = parseRuleExpression([...terms, ...terms].join('||'));
    expect(atLimit.references()).toHaveLength(MAX_EXPRESSION_REFERENCES);
    const prefix = `${terms.join('||')}||p/s0||`;
    const error = parseError(`${prefix}q/extra`);
    expect([error.column, error.expected, error.found]).toEqual([
      prefix.length + 1,
      `at most ${MAX_EXPRESSION_REFERENCES} distinct sensor references`,
      '"q/extra"',
    ]);
  });

  it('stays fast on the worst inputs the length limit allows', () => {
    const worst = [
      '('.repeat(MAX_EXPRESSION_LENGTH),
      'not '.repeat(MAX_EXPRESSION_LENGTH / 4),
      `"${'\\"'.repeat(511)}`,
      `${'a/x or '.repeat(146)}a/x`,
      `${'a/x and '.repeat(127)}a/x`,
      'a'.repeat(MAX_EXPRESSION_LENGTH),
      `a/${'b'.repeat(MAX_EXPRESSION_LENGTH - 2)}`,
      `a/${'.'.repeat(MAX_EXPRESSION_LENGTH - 2)}`,
      '1'.repeat(MAX_EXPRESSION_LENGTH),
    ];
    for (const text of worst) {
      const started = performance.now();
      try {
        const expression = parseRuleExpression(text);
        expression.evaluate(() => true);
        expression.toString();
      } catch (error) {
        expect(error).toBeInstanceOf(RuleExpressionError);
      }
      expect(performance.now() - started).toBeLessThan(50);
    }
  });
});

describe('evaluate', () => {
  const T = true;
  const F = false;
  const U = undefined;

  it.each([
    // Kleene's strong three-valued logic: a known side decides when it can.
    [T, T, T, T],
    [T, F, F, T],
    [T, U, U, T],
    [F, T, F, T],
    [F, F, F, F],
    [F, U, F, U],
    [U, T, U, T],
    [U, F, F, U],
    [U, U, U, U],
  ])('x=%s y=%s: and → %s, or → %s', (x, y, and, or) => {
    const lookup = lookupFrom({ 'p/x': x, 'p/y': y });
    expect(evaluate(parseRuleExpression('p/x and p/y'), lookup)).toBe(and);
    expect(evaluate(parseRuleExpression('p/x or p/y'), lookup)).toBe(or);
    expect(evaluate(parseRuleExpression('p/x && p/y'), lookup)).toBe(and);
    expect(evaluate(parseRuleExpression('p/x || p/y'), lookup)).toBe(or);
  });

  it.each([
    [T, F],
    [F, T],
    [U, U],
  ])('not %s → %s', (x, expected) => {
    expect(evaluate(parseRuleExpression('not p/x'), lookupFrom({ 'p/x': x }))).toBe(expected);
    expect(evaluate(parseRuleExpression('!p/x'), lookupFrom({ 'p/x': x }))).toBe(expected);
  });

  it.each([
    ['p/n > 30', 31, T],
    ['p/n > 30', 30, F],
    ['p/n >= 30', 30, T],
    ['p/n < 30', 29.9, T],
    ['p/n <= -3', -3, T],
    ['p/n <= -3', -2.5, F],
    ['p/n == 1.5', 1.5, T],
    ['p/n != 1.5', 1.5, F],
    ['p/n == 0', -0, T],
    ['p/n > 1000', Number.POSITIVE_INFINITY, T],
    ['p/n > 30', Number.NaN, U],
    ['p/n != 30', Number.NaN, U],
    ['p/n > 30', undefined, U],
    ['p/n != 30', undefined, U],
    ['p/n > 30', '31', U],
    ['p/n == 31', '31', U],
    ['p/n != 31', '31', U],
    ['p/n == 1', true, U],
    ['p/n > 0', true, U],
    ['p/n == "open"', 'open', T],
    ['p/n == "open"', 'Open', F],
    ['p/n != "open"', 'closed', T],
    ['p/n == ""', '', T],
    ['p/n == true', true, T],
    ['p/n == false', true, F],
    ['p/n != false', true, T],
    ['p/n == true', 'true', U],
    ['p/n < 3', 'a', U],
    ['p/n', true, T],
    ['p/n', false, F],
    ['p/n', 1, U],
    ['p/n', 'yes', U],
    ['not p/n', 1, U],
  ])('%s with p/n = %j → %s', (text, value, expected) => {
    expect(evaluate(parseRuleExpression(text), lookupFrom({ 'p/n': value }))).toBe(expected);
  });

  it.each([
    ['p/a == p/b', 1, 1, T],
    ['p/a < p/b', 1, 2, T],
    ['p/a == p/b', 'x', 'x', T],
    ['p/a == p/b', 1, '1', U],
    ['p/a >= p/b', 2, undefined, U],
    ['p/a == p/b', undefined, undefined, U],
  ])('%s with %j, %j → %s', (text, a, b, expected) => {
    expect(evaluate(parseRuleExpression(text), lookupFrom({ 'p/a': a, 'p/b': b }))).toBe(expected);
  });

  it('evaluates the examples a user would write', () => {
    const hot = parseRuleExpression('hall-pi/temp > 30');
    expect(hot.evaluate(lookupFrom({ 'hall-pi/temp': 31.5 }))).toBe(true);
    expect(hot.evaluate(lookupFrom({}))).toBeUndefined();

    const door = parseRuleExpression('kitchen/door == "open" and not hall-pi/motion');
    expect(door.evaluate(lookupFrom({ 'kitchen/door': 'open', 'hall-pi/motion': false }))).toBe(true);
    expect(door.evaluate(lookupFrom({ 'kitchen/door': 'open', 'hall-pi/motion': true }))).toBe(false);
    // The door alone decides when it is closed, however unknown the motion sensor is.
    expect(door.evaluate(lookupFrom({ 'kitchen/door': 'closed' }))).toBe(false);
    expect(door.evaluate(lookupFrom({ 'kitchen/door': 'open' }))).toBeUndefined();

    const mixed = parseRuleExpression('(a/t >= 20.5 or b/t < -3) and c/on != true');
    expect(mixed.evaluate(lookupFrom({ 'a/t': 20.5, 'c/on': false }))).toBe(true);
    expect(mixed.evaluate(lookupFrom({ 'b/t': -3.5, 'c/on': true }))).toBe(false);
    expect(mixed.evaluate(lookupFrom({ 'a/t': 10, 'b/t': 0, 'c/on': false }))).toBe(false);
    expect(mixed.evaluate(lookupFrom({ 'a/t': 10, 'c/on': false }))).toBeUndefined();
  });

  it('compares conditions with == as booleans', () => {
    const same = parseRuleExpression('(p/a > 1) == (p/b > 1)');
    expect(same.evaluate(lookupFrom({ 'p/a': 2, 'p/b': 3 }))).toBe(true);
    expect(same.evaluate(lookupFrom({ 'p/a': 2, 'p/b': 0 }))).toBe(false);
    expect(same.evaluate(lookupFrom({ 'p/a': 2 }))).toBeUndefined();
  });

  it('passes peer and sensor to the lookup, and treats junk a lookup returns as unknown', () => {
    const calls: string[] = [];
    const expression = parseRuleExpression('hall-pi/temp.c > 3');
    expression.evaluate((peer, sensor) => {
      calls.push(`${peer}|${sensor}`);
      return 4;
    });
    expect(calls).toEqual(['hall-pi|temp.c']);
    const junk = (() => null) as unknown as SensorLookup;
    expect(expression.evaluate(junk)).toBeUndefined();
    expect(parseRuleExpression('p/x').evaluate((() => ({})) as unknown as SensorLookup)).toBeUndefined();
  });
});

// ------------------------------------------------------------------------------------ property tests

const name = fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,5}$/);
const reference = fc.tuple(name, name).map(([peer, sensor]) => `${peer}/${sensor}`);
const number = fc.oneof(
  fc.integer({ min: -1000, max: 1000 }).map(String),
  fc.constant('-2.5'),
  fc.constant('0.125'),
);
const string = fc
  .string({ maxLength: 6 })
  .map((text) => `"${text.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`);
const operand = fc.oneof(reference, number, string, fc.constantFrom('true', 'false'));
const comparison = fc
  .tuple(reference, fc.constantFrom('==', '!=', '<', '<=', '>', '>='), fc.oneof(reference, number))
  .map(([left, operator, right]) => `${left} ${operator} ${right}`);
const equality = fc
  .tuple(operand, fc.constantFrom('==', '!='), operand)
  .map(([left, operator, right]) => `${left} ${operator} ${right}`);

/** Valid conditions, with random operator spellings and redundant parentheses. */
const condition: fc.Arbitrary<string> = fc.letrec<{ condition: string }>((tie) => ({
  condition: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    comparison,
    equality,
    reference,
    fc.constantFrom('true', 'false'),
    fc
      .tuple(tie('condition'), fc.constantFrom(' and ', ' or ', '&&', '||', ' && '), tie('condition'))
      .map(([left, operator, right]) => `${left}${operator}${right}`),
    fc.tuple(fc.constantFrom('not ', '!'), tie('condition')).map(([not, inner]) => `${not}(${inner})`),
    tie('condition').map((inner) => `(${inner})`),
  ),
})).condition;

const tokenSoup = fc
  .array(
    fc.constantFrom(
      'a/b',
      'x-1/t.c',
      '(',
      ')',
      ' and ',
      ' or ',
      'not ',
      '!',
      '&&',
      '||',
      '==',
      '!=',
      '<',
      '>=',
      '3',
      '-2.5',
      '"s"',
      '"',
      '\\',
      'true',
      ' ',
      '/',
      '.',
      '-',
    ),
    { maxLength: 30 },
  )
  .map((parts) => parts.join(''));

describe('properties', () => {
  it('never throws anything but RuleExpressionError, with a column inside the text, on any input', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: 'binary', maxLength: 40 }), tokenSoup),
        (text) => {
          try {
            const expression = parseRuleExpression(text);
            expression.evaluate(() => undefined);
            expression.evaluate(() => 1);
            expect(parseRuleExpression(expression.toString()).toString()).toBe(expression.toString());
          } catch (error) {
            expect(error).toBeInstanceOf(RuleExpressionError);
            const { column } = error as RuleExpressionError;
            expect(column).toBeGreaterThanOrEqual(1);
            expect(column).toBeLessThanOrEqual(text.length + 1);
          }
        },
      ),
      { numRuns: 5_000 },
    );
  });

  it('never hangs on long random input', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: MAX_EXPRESSION_LENGTH + 8 }), tokenSoup), (text) => {
        const started = performance.now();
        try {
          parseRuleExpression(text);
        } catch (error) {
          expect(error).toBeInstanceOf(RuleExpressionError);
        }
        expect(performance.now() - started).toBeLessThan(50);
      }),
      { numRuns: 500 },
    );
  });

  it('parses every generated condition, and its canonical text means the same thing', () => {
    const values = fc.dictionary(
      fc.string({ maxLength: 1 }),
      fc.oneof(fc.boolean(), fc.integer({ min: -3, max: 3 }), fc.constantFrom('', 'a')),
    );
    fc.assert(
      fc.property(condition, values, (text, table) => {
        fc.pre(text.length <= MAX_EXPRESSION_LENGTH);
        let expression: ReturnType<typeof parseRuleExpression>;
        try {
          expression = parseRuleExpression(text);
        } catch (error) {
          // Only the structural limits may refuse a generated condition.
          expect((error as RuleExpressionError).expected).toMatch(/^at most/);
          return;
        }
        const canonical = parseRuleExpression(expression.toString());
        expect(canonical.toString()).toBe(expression.toString());
        expect(canonical.references()).toEqual(expression.references());
        // A deterministic pseudo-random assignment of values, some sensors left unknown.
        const lookup: SensorLookup = (peer, sensor) => table[(peer + sensor).slice(-1)];
        expect(canonical.evaluate(lookup)).toBe(expression.evaluate(lookup));
      }),
      { numRuns: 2_000 },
    );
  });
});
