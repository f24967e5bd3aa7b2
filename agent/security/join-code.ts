// Invitation codes: 11 decimal digits, shown as 1234-5678-901. The first 2 are the discriminator, which
// an inviting agent shows openly (so a joiner dials only the inviter it was given a code for); the next 8
// are the secret passcode; the last is a Verhoeff check digit (as Matter's manual pairing codes have), so a
// typo is caught on the joining device and never costs one of the invitation's few attempts.
// The whole code is CPace's password: an attacker who does not hold it gets one guess per online attempt.
import { randomInt } from 'node:crypto';
import { NearmeshError } from '../core/errors.js';

export const INVITE_CODE_DIGITS = 11;
const DISCRIMINATOR_DIGITS = 2;
const PASSCODE_DIGITS = 8;

export interface InviteCode {
  /** The 11 digits, no separators: what CPace hashes. */
  readonly digits: string;
  /** 0-99: shown by the inviter while the invitation is open. */
  readonly discriminator: number;
}

/** The text given to `join` is not a well-formed code (its reason says what is off). */
export class InviteCodeError extends NearmeshError {
  constructor(message: string) {
    super('invite-code', message);
  }
}

/** A fresh random code. */
export function generateInviteCode(): InviteCode {
  const body =
    String(randomInt(10 ** DISCRIMINATOR_DIGITS)).padStart(DISCRIMINATOR_DIGITS, '0') +
    String(randomInt(10 ** PASSCODE_DIGITS)).padStart(PASSCODE_DIGITS, '0');
  return codeOf(body + verhoeffDigit(body));
}

/** "12345678901" → "1234-5678-901", as printed for a person. */
export function formatInviteCode(code: InviteCode): string {
  const { digits } = code;
  return `${digits.slice(0, 4)}-${digits.slice(4, 8)}-${digits.slice(8)}`;
}

/** Reads a code as a person typed it: spaces and dashes ignored. Throws InviteCodeError. */
export function parseInviteCode(text: string): InviteCode {
  const digits = text.replace(/[\s-]/g, '');
  if (!/^\d+$/.test(digits)) throw new InviteCodeError('an invitation code has digits only (and dashes)');
  if (digits.length !== INVITE_CODE_DIGITS) {
    throw new InviteCodeError(
      `an invitation code has ${INVITE_CODE_DIGITS} digits, this one ${digits.length}: check it against the inviting device`,
    );
  }
  if (verhoeffDigit(digits.slice(0, -1)) !== digits.slice(-1)) {
    throw new InviteCodeError(
      'that code has a typo (its check digit does not match): check it against the inviting device',
    );
  }
  return codeOf(digits);
}

function codeOf(digits: string): InviteCode {
  return { digits, discriminator: Number(digits.slice(0, DISCRIMINATOR_DIGITS)) };
}

// Verhoeff's dihedral-group check digit: catches every single-digit error and every swap of two
// neighbouring digits (Luhn misses 09/90).
const MULTIPLY = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
  [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
  [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
  [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
  [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
  [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
  [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
  [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
  [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
];
const PERMUTE = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
  [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
  [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
  [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
  [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
  [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
  [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
];
const INVERSE = [0, 4, 3, 2, 1, 5, 6, 7, 8, 9];

/** The Verhoeff check digit to append to `digits`. */
export function verhoeffDigit(digits: string): string {
  let check = 0;
  for (let i = 0; i < digits.length; i++) {
    const digit = Number(digits[digits.length - 1 - i]);
    check = (MULTIPLY[check] as number[])[(PERMUTE[(i + 1) % 8] as number[])[digit] as number] as number;
  }
  return String(INVERSE[check]);
}
