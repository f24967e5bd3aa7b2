// The error a parser throws, checked to be of the class it promises.
import { expect } from 'vitest';

/** Runs `parse(text)` and returns what it throws, which must be an `ErrorClass`; fails if it accepts. */
export function refusal<E extends Error>(
  ErrorClass: abstract new (...args: never[]) => E,
  parse: (text: string) => unknown,
  text: string,
): E {
  try {
    parse(text);
  } catch (error) {
    expect(error).toBeInstanceOf(ErrorClass);
    return error as E;
  }
  throw new Error(`expected ${JSON.stringify(text)} to be refused`);
}
