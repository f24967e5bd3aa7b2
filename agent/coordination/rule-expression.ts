// Rule conditions such as `kitchen/door == "open" and not hall-pi/motion`, written by users in config and
// received from peers, so parsing is hand-written and bounded (length, nesting, references): no eval, no
// Function, nothing whose cost depends on anything but the text length. Sensor values can be missing or
// stale, so evaluation is three-valued (Kleene): an unknown value makes a comparison unknown, and `and`/`or`
// still decide when the known side is enough (`false and ?` is false, `true or ?` is true).

import { NearmeshError } from '../core/errors.js';

export const MAX_EXPRESSION_LENGTH = 1024;
/** Nested parentheses and `not`s; deeper is never hand-written and would only cost stack. */
export const MAX_EXPRESSION_DEPTH = 32;
/** Distinct sensor references; each becomes a subscription, so this bounds what one rule can watch. */
export const MAX_EXPRESSION_REFERENCES = 64;

export type SensorValue = number | string | boolean;

export interface SensorReference {
  readonly peer: string;
  readonly sensor: string;
}

export type ComparisonOperator = '<' | '<=' | '>' | '>=' | '==' | '!=';

/** The parsed tree; `column` is the 1-based column where the node's text starts. */
export type RuleNode =
  | {
      readonly kind: 'or' | 'and';
      readonly column: number;
      readonly left: RuleNode;
      readonly right: RuleNode;
    }
  | { readonly kind: 'not'; readonly column: number; readonly operand: RuleNode }
  | {
      readonly kind: 'compare';
      readonly column: number;
      readonly operator: ComparisonOperator;
      readonly left: RuleNode;
      readonly right: RuleNode;
    }
  | { readonly kind: 'literal'; readonly column: number; readonly value: SensorValue; readonly raw: string }
  | { readonly kind: 'reference'; readonly column: number; readonly peer: string; readonly sensor: string };

/** A rule condition that does not parse or exceeds a limit: where (1-based column) and what was expected. */
export class RuleExpressionError extends NearmeshError {
  constructor(
    readonly column: number,
    readonly expected: string,
    readonly found: string,
  ) {
    super('bad-rule-expression', `rule expression: expected ${expected} at column ${column}, found ${found}`);
  }
}

/** A parsed condition; immutable, safe to share and to evaluate repeatedly. */
export class RuleExpression {
  readonly #references: readonly SensorReference[];

  constructor(
    readonly source: string,
    readonly root: RuleNode,
    references: readonly SensorReference[],
  ) {
    this.#references = references;
  }

  /** The sensors the condition reads, each once, in order of first appearance. */
  references(): SensorReference[] {
    return this.#references.map((reference) => ({ ...reference }));
  }

  evaluate(lookup: SensorLookup): boolean | undefined {
    return evaluate(this, lookup);
  }

  /** Canonical text: single spaces, word operators, only the parentheses precedence needs. */
  toString(): string {
    return print(this.root, 0);
  }
}

/** Current value of a sensor; undefined when unknown (never reported, peer gone, stale). */
export type SensorLookup = (peer: string, sensor: string) => SensorValue | undefined;

// ---------------------------------------------------------------------------------------------- tokens

/** `invalid` is a word or character that is nothing valid; the parser reports it with what it expected. */
type TokenKind = 'or' | 'and' | 'not' | 'compare' | '(' | ')' | 'literal' | 'reference' | 'invalid' | 'end';

interface Token {
  readonly kind: TokenKind;
  readonly column: number;
  /** Source text of the token, for error messages and canonical printing. */
  readonly text: string;
  readonly value?: SensorValue;
  readonly operator?: ComparisonOperator;
  readonly peer?: string;
  readonly sensor?: string;
}

const isNameChar = (char: string | undefined): boolean =>
  char !== undefined &&
  ((char >= 'a' && char <= 'z') ||
    (char >= 'A' && char <= 'Z') ||
    (char >= '0' && char <= '9') ||
    char === '-' ||
    char === '_' ||
    char === '.');

const isDigit = (char: string | undefined): boolean => char !== undefined && char >= '0' && char <= '9';

/** `-?digits(.digits)?`, checked by hand so no regex runs on user text. */
function isNumberText(text: string): boolean {
  let position = text.startsWith('-') ? 1 : 0;
  const wholeStart = position;
  while (isDigit(text[position])) position++;
  if (position === wholeStart) return false;
  if (text[position] === '.') {
    const fractionStart = ++position;
    while (isDigit(text[position])) position++;
    if (position === fractionStart) return false;
  }
  return position === text.length;
}

const describeToken = (token: Token): string =>
  token.kind === 'end' ? 'end of input' : JSON.stringify(token.text);

const TERM = 'a sensor reference (peer/sensor), a literal, "not" or "("';

/** Produces tokens on demand, so the first error reported is the leftmost one. */
class Lexer {
  #position = 0;

  constructor(readonly text: string) {}

  next(): Token {
    const text = this.text;
    while (
      text[this.#position] === ' ' ||
      text[this.#position] === '\t' ||
      text[this.#position] === '\n' ||
      text[this.#position] === '\r'
    ) {
      this.#position++;
    }
    const start = this.#position;
    const column = start + 1;
    const char = text[start];
    if (char === undefined) return { kind: 'end', column, text: '' };
    const two = text.slice(start, start + 2);
    const symbol = (kind: TokenKind, length: number, operator?: ComparisonOperator): Token => {
      this.#position += length;
      return { kind, column, text: text.slice(start, start + length), ...(operator ? { operator } : {}) };
    };
    if (two === '&&') return symbol('and', 2);
    if (two === '||') return symbol('or', 2);
    if (two === '==' || two === '!=' || two === '<=' || two === '>=') return symbol('compare', 2, two);
    if (char === '<' || char === '>') return symbol('compare', 1, char);
    if (char === '!') return symbol('not', 1);
    if (char === '(' || char === ')') return symbol(char, 1);
    if (char === '"') return this.#string(column);
    if (isNameChar(char)) return this.#word(column);
    this.#position++;
    return { kind: 'invalid', column, text: char };
  }

  #string(column: number): Token {
    const text = this.text;
    let value = '';
    let position = column; // just past the opening quote
    for (;;) {
      const char = text[position];
      if (char === undefined) {
        throw new RuleExpressionError(column, "a closing '\"' for this string", 'end of input');
      }
      if (char === '"') break;
      if (char === '\\') {
        const escaped = text[position + 1];
        if (escaped !== '"' && escaped !== '\\') {
          throw new RuleExpressionError(
            position + 2,
            "'\"' or '\\' after a backslash",
            escaped === undefined ? 'end of input' : JSON.stringify(escaped),
          );
        }
        value += escaped;
        position += 2;
      } else {
        value += char;
        position++;
      }
    }
    this.#position = position + 1;
    return { kind: 'literal', column, text: text.slice(column - 1, position + 1), value };
  }

  /** A word is a keyword, a number, or, when a "/" follows, the peer half of a sensor reference. */
  #word(column: number): Token {
    const text = this.text;
    const start = column - 1;
    let position = start;
    while (isNameChar(text[position])) position++;
    const word = text.slice(start, position);
    if (text[position] === '/') {
      const sensorStart = position + 1;
      position = sensorStart;
      while (isNameChar(text[position])) position++;
      const sensor = text.slice(sensorStart, position);
      const badDot = emptySegmentAt(sensor);
      if (sensor === '' || badDot >= 0) {
        throw new RuleExpressionError(
          sensorStart + Math.max(badDot, 0) + 1,
          'a sensor name (letters, digits, "_", "-", dot-separated)',
          describeChar(text[sensorStart + Math.max(badDot, 0)]),
        );
      }
      this.#position = position;
      return { kind: 'reference', column, text: text.slice(start, position), peer: word, sensor };
    }
    this.#position = position;
    switch (word) {
      case 'and':
      case 'or':
      case 'not':
        return { kind: word, column, text: word };
      case 'true':
      case 'false':
        return { kind: 'literal', column, text: word, value: word === 'true' };
    }
    if (isNumberText(word)) {
      return { kind: 'literal', column, text: word, value: Number(word) };
    }
    return { kind: 'invalid', column, text: word };
  }
}

/** Index of the dot that starts or ends an empty segment of a dotted name ("a..b", ".a", "a."), or -1. */
function emptySegmentAt(name: string): number {
  for (let index = 0; index < name.length; index++) {
    const dot = name[index] === '.';
    if (dot && (index === 0 || index === name.length - 1 || name[index + 1] === '.')) return index;
  }
  return -1;
}

const describeChar = (char: string | undefined): string =>
  char === undefined ? 'end of input' : JSON.stringify(char);

// ---------------------------------------------------------------------------------------------- parser

class Parser {
  readonly #lexer: Lexer;
  #token: Token;
  #depth = 0;
  /** Whether the operand just parsed was the right-hand side of a comparison. */
  #afterComparison = false;
  readonly #references = new Map<string, SensorReference>();

  constructor(text: string) {
    this.#lexer = new Lexer(text);
    this.#token = this.#lexer.next();
  }

  get references(): SensorReference[] {
    return [...this.#references.values()];
  }

  parse(): RuleNode {
    const root = this.#condition(this.#or());
    if (this.#token.kind !== 'end') this.#failAfterOperand('end of input');
    return root;
  }

  /** What may follow a finished operand depends on whether it already was one side of a comparison. */
  #failAfterOperand(closer: string): never {
    if (this.#afterComparison) {
      const note = this.#token.kind === 'compare' ? ' (comparisons do not chain)' : '';
      this.#fail(`"and", "or" or ${closer}${note}`);
    }
    this.#fail(`a comparison operator, "and", "or" or ${closer}`);
  }

  #advance(): Token {
    const token = this.#token;
    this.#token = this.#lexer.next();
    return token;
  }

  #fail(expected: string, token: Token = this.#token): never {
    throw new RuleExpressionError(token.column, expected, describeToken(token));
  }

  #or(): RuleNode {
    let left = this.#and();
    while (this.#token.kind === 'or') {
      this.#advance();
      const right = this.#and();
      left = { kind: 'or', column: left.column, left: this.#condition(left), right: this.#condition(right) };
    }
    return left;
  }

  #and(): RuleNode {
    let left = this.#not();
    while (this.#token.kind === 'and') {
      this.#advance();
      const right = this.#not();
      left = { kind: 'and', column: left.column, left: this.#condition(left), right: this.#condition(right) };
    }
    return left;
  }

  #not(): RuleNode {
    if (this.#token.kind !== 'not') return this.#comparison();
    const { column } = this.#advance();
    this.#enter(column);
    const operand = this.#condition(this.#not());
    this.#depth--;
    return { kind: 'not', column, operand };
  }

  #comparison(): RuleNode {
    const left = this.#operand();
    this.#afterComparison = false;
    if (this.#token.kind !== 'compare') return left;
    const operator = this.#advance().operator as ComparisonOperator;
    const ordering = operator !== '==' && operator !== '!=';
    if (ordering) checkOrderable(left, operator);
    const right = this.#operand();
    if (ordering) checkOrderable(right, operator);
    this.#afterComparison = true;
    return { kind: 'compare', column: left.column, operator, left, right };
  }

  #operand(): RuleNode {
    const token = this.#token;
    switch (token.kind) {
      case 'literal':
        this.#advance();
        return { kind: 'literal', column: token.column, value: token.value as SensorValue, raw: token.text };
      case 'reference': {
        const peer = token.peer as string;
        const sensor = token.sensor as string;
        const key = `${peer}/${sensor}`;
        if (!this.#references.has(key)) {
          if (this.#references.size >= MAX_EXPRESSION_REFERENCES) {
            this.#fail(`at most ${MAX_EXPRESSION_REFERENCES} distinct sensor references`);
          }
          this.#references.set(key, { peer, sensor });
        }
        this.#advance();
        return { kind: 'reference', column: token.column, peer, sensor };
      }
      case '(': {
        this.#enter(token.column);
        this.#advance();
        const inner = this.#or();
        if (this.#token.kind !== ')') this.#failAfterOperand('")"');
        this.#advance();
        this.#depth--;
        // The parenthesised node starts at its "(", so errors about it point there.
        this.#afterComparison = false;
        return { ...inner, column: token.column };
      }
      default:
        return this.#fail(TERM);
    }
  }

  #enter(column: number): void {
    if (++this.#depth > MAX_EXPRESSION_DEPTH) {
      throw new RuleExpressionError(
        column,
        `at most ${MAX_EXPRESSION_DEPTH} levels of nesting`,
        'deeper nesting',
      );
    }
  }

  /** A number or string on its own can never be true or false; catching it here beats an always-unknown rule. */
  #condition(node: RuleNode): RuleNode {
    if (node.kind === 'literal' && typeof node.value !== 'boolean') {
      throw new RuleExpressionError(
        node.column,
        'a condition (a comparison, a sensor reference or true/false)',
        describeNode(node),
      );
    }
    return node;
  }
}

/** `<`, `>` and friends only ever hold between numbers; a string or condition there is a typo, not a rule. */
function checkOrderable(side: RuleNode, operator: ComparisonOperator): void {
  if (side.kind === 'reference' || (side.kind === 'literal' && typeof side.value === 'number')) return;
  throw new RuleExpressionError(
    side.column,
    `a number or sensor reference for "${operator}"`,
    describeNode(side),
  );
}

function describeNode(node: RuleNode): string {
  if (node.kind === 'literal') return JSON.stringify(node.raw);
  if (node.kind === 'reference') return JSON.stringify(`${node.peer}/${node.sensor}`);
  return node.kind === 'compare' ? 'a comparison' : `an "${node.kind}" expression`;
}

/** Parses a rule condition, or throws RuleExpressionError naming the column and what was expected there. */
export function parseRuleExpression(text: string): RuleExpression {
  if (text.length > MAX_EXPRESSION_LENGTH) {
    throw new RuleExpressionError(
      MAX_EXPRESSION_LENGTH + 1,
      `at most ${MAX_EXPRESSION_LENGTH} characters`,
      `${text.length} characters`,
    );
  }
  const parser = new Parser(text);
  const root = parser.parse();
  return new RuleExpression(text, root, parser.references);
}

// ------------------------------------------------------------------------------------------ evaluation

/** True, false, or undefined when the sensors read so far cannot decide it. */
/**
 * `margin` loosens every ordering comparison by that much in the direction that keeps the whole expression
 * true (`x > 30` holds down to x > 29 with margin 1; under `not` the other way): hysteresis, so a rule that
 * fired re-arms only once its condition is clearly false again.
 */
export function evaluate(
  expression: RuleExpression,
  lookup: SensorLookup,
  options: { margin?: number } = {},
): boolean | undefined {
  return truth(expression.root, lookup, options.margin ?? 0);
}

function truth(node: RuleNode, lookup: SensorLookup, margin: number): boolean | undefined {
  switch (node.kind) {
    case 'and': {
      const left = truth(node.left, lookup, margin);
      if (left === false) return false;
      const right = truth(node.right, lookup, margin);
      if (right === false) return false;
      return left === true && right === true ? true : undefined;
    }
    case 'or': {
      const left = truth(node.left, lookup, margin);
      if (left === true) return true;
      const right = truth(node.right, lookup, margin);
      if (right === true) return true;
      return left === false && right === false ? false : undefined;
    }
    case 'not': {
      const operand = truth(node.operand, lookup, -margin);
      return operand === undefined ? undefined : !operand;
    }
    case 'compare':
      return compare(
        node.operator,
        value(node.left, lookup, margin),
        value(node.right, lookup, margin),
        margin,
      );
    case 'literal':
    case 'reference': {
      const result = value(node, lookup, margin);
      return typeof result === 'boolean' ? result : undefined;
    }
  }
}

function value(node: RuleNode, lookup: SensorLookup, margin: number): SensorValue | undefined {
  if (node.kind === 'literal') return node.value;
  if (node.kind === 'reference') {
    const result = lookup(node.peer, node.sensor);
    // Anything else a misbehaving source hands back (NaN, null, objects) counts as unknown.
    if (typeof result === 'number') return Number.isNaN(result) ? undefined : result;
    return typeof result === 'string' || typeof result === 'boolean' ? result : undefined;
  }
  return truth(node, lookup, margin);
}

/** Ordering needs two numbers and equality two values of one type; anything else is unknown, not an error. */
function compare(
  operator: ComparisonOperator,
  left: SensorValue | undefined,
  right: SensorValue | undefined,
  margin: number,
): boolean | undefined {
  if (left === undefined || right === undefined || typeof left !== typeof right) return undefined;
  switch (operator) {
    case '==':
      return left === right;
    case '!=':
      return left !== right;
  }
  if (typeof left !== 'number' || typeof right !== 'number') return undefined;
  switch (operator) {
    case '<':
      return left < right + margin;
    case '<=':
      return left <= right + margin;
    case '>':
      return left > right - margin;
    case '>=':
      return left >= right - margin;
  }
}

// ------------------------------------------------------------------------------------------- printing

const PRECEDENCE: Record<RuleNode['kind'], number> = {
  or: 1,
  and: 2,
  not: 3,
  compare: 4,
  literal: 5,
  reference: 5,
};

function print(node: RuleNode, minimum: number): string {
  let text: string;
  switch (node.kind) {
    case 'or':
    case 'and': {
      const own = PRECEDENCE[node.kind];
      text = `${print(node.left, own)} ${node.kind} ${print(node.right, own + 1)}`;
      break;
    }
    case 'not':
      text = `not ${print(node.operand, PRECEDENCE.not)}`;
      break;
    case 'compare':
      text = `${print(node.left, PRECEDENCE.literal)} ${node.operator} ${print(node.right, PRECEDENCE.literal)}`;
      break;
    case 'literal':
      text =
        typeof node.value === 'string'
          ? `"${node.value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`
          : node.raw;
      break;
    case 'reference':
      text = `${node.peer}/${node.sensor}`;
      break;
  }
  return PRECEDENCE[node.kind] < minimum ? `(${text})` : text;
}
