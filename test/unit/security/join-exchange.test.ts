// Joining with a code, both sides over an in-memory link, with the real invitation book deciding: the
// right code gets the grant, a wrong one is refused and counted, the invitation closes after its attempts,
// on expiry and after one use, and a typo never reaches the wire.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Counters } from '../../../agent/core/counters.js';
import { silentLogger } from '../../../agent/core/logger.js';
import { generateIdentity } from '../../../agent/identity/identity.js';
import { decodeJoinHello, type JoinGrant } from '../../../agent/protocol/join.js';
import {
  formatInviteCode,
  generateInviteCode,
  parseInviteCode,
  verhoeffDigit,
} from '../../../agent/security/join-code.js';
import { answerJoin, JoinError, joinWithCode } from '../../../agent/security/join-exchange.js';
import { Invitations } from '../../../agent/trust/invitations.js';
import { memoryLinkPair } from '../../support/memory-link.js';

const inviter = generateIdentity();
const grant: JoinGrant = {
  meshName: 'greenhouse',
  epoch: 0,
  key: Uint8Array.from(randomBytes(32)),
  rotation: null,
  admins: [inviter.peerId],
  inviterKey: inviter.publicKey,
  inviterName: 'alpha',
};

const books: Invitations[] = [];
afterEach(() => {
  for (const book of books.splice(0)) book.stop();
  vi.useRealTimers();
});

function setup() {
  const counters = new Counters();
  const book = new Invitations({ grant: () => grant, counters, log: silentLogger() });
  books.push(book);
  return { book, counters };
}

/** One join attempt with `codeText` against `book`: the joiner's result and the inviter's. */
async function attempt(book: Invitations, codeText: string) {
  const [joinerLink, inviterLink] = memoryLinkPair();
  const joiner = generateIdentity();
  const answered = new Promise<Awaited<ReturnType<typeof answerJoin>> | 'silent'>((resolve) => {
    inviterLink.once('frame', (frame) => {
      const hello = decodeJoinHello(frame);
      const answerer = hello === undefined ? undefined : book.answererFor(hello.discriminator);
      if (hello === undefined || answerer === undefined) {
        inviterLink.close();
        resolve('silent');
        return;
      }
      void answerJoin(inviterLink, hello, answerer, 2000).then(resolve);
    });
  });
  const joined = joinWithCode(joinerLink, {
    code: parseInviteCode(codeText),
    identity: joiner,
    name: 'bravo',
    stepTimeoutMs: 2000,
  }).then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error: error as JoinError }),
  );
  const [joinResult, inviterResult] = await Promise.all([joined, answered]);
  joinerLink.close();
  inviterLink.close();
  return { joinResult, inviterResult, joiner };
}

/** A well-formed code (right check digit) that differs from `code` in the passcode. */
function wrongCodeFor(code: string): string {
  const digits = code.replace(/-/g, '');
  const body = `${digits.slice(0, 2)}${String((Number(digits.slice(2, 10)) + 1) % 1e8).padStart(8, '0')}`;
  return body + verhoeffDigit(body);
}

describe('invitation codes', () => {
  it('computes Verhoeff check digits as published', () => {
    expect(verhoeffDigit('236')).toBe('3');
    expect(verhoeffDigit('12345')).toBe('1');
    expect(verhoeffDigit('142857')).toBe('0');
  });

  it('prints 11 digits as 4-4-3 and reads them back with or without separators', () => {
    const code = generateInviteCode();
    const printed = formatInviteCode(code);
    expect(printed).toMatch(/^\d{4}-\d{4}-\d{3}$/);
    expect(parseInviteCode(printed)).toEqual(code);
    expect(parseInviteCode(` ${printed.replace(/-/g, ' ')} `)).toEqual(code);
    expect(code.discriminator).toBe(Number(code.digits.slice(0, 2)));
  });

  it('catches every single-digit typo and every swap of neighbouring digits', () => {
    const { digits } = generateInviteCode();
    for (let i = 0; i < digits.length; i++) {
      for (let d = 0; d <= 9; d++) {
        if (String(d) === digits[i]) continue;
        const typo = digits.slice(0, i) + d + digits.slice(i + 1);
        expect(() => parseInviteCode(typo)).toThrow(/typo/);
      }
      if (i + 1 < digits.length && digits[i] !== digits[i + 1]) {
        const swapped = digits.slice(0, i) + digits[i + 1] + digits[i] + digits.slice(i + 2);
        expect(() => parseInviteCode(swapped)).toThrow(/typo/);
      }
    }
  });

  it('says what is wrong with text that is not a code', () => {
    expect(() => parseInviteCode('1234-5678')).toThrow(/11 digits, this one 8/);
    expect(() => parseInviteCode('abcd-5678-901')).toThrow(/digits only/);
  });
});

describe('joining with a code', () => {
  it('hands the mesh key, name and admins to the device with the right code, once', async () => {
    const { book, counters } = setup();
    const invitation = book.open();
    const { joinResult, inviterResult, joiner } = await attempt(book, invitation.code);
    expect(joinResult.ok).toBe(true);
    if (!joinResult.ok) return;
    expect(joinResult.value).toMatchObject({ meshName: 'greenhouse', epoch: 0, admins: [inviter.peerId] });
    expect(Buffer.from(joinResult.value.key).equals(Buffer.from(grant.key))).toBe(true);
    expect(joinResult.value.inviterId).toBe(inviter.peerId);
    expect(inviterResult).toEqual({ joined: { publicKey: joiner.publicKey, name: 'bravo' } });
    expect(book.status(invitation.id)).toMatchObject({
      state: 'joined',
      code: '',
      joined: { peer: joiner.peerId, name: 'bravo' },
    });
    expect(counters.snapshot()['join.joined']).toBe(1);
    // One use: the same code again finds no open invitation, and the link stays silent.
    const again = await attempt(book, invitation.code);
    expect(again.inviterResult).toBe('silent');
    expect(again.joinResult).toMatchObject({ ok: false, error: { reason: 'link-closed' } });
  });

  it('refuses a wrong code without the key, counts it, and closes after three', async () => {
    const { book, counters } = setup();
    const invitation = book.open();
    const wrong = wrongCodeFor(invitation.code);
    for (const left of [2, 1, 0]) {
      const { joinResult, inviterResult } = await attempt(book, wrong);
      expect(inviterResult).toEqual({ failed: 'refused' });
      expect(joinResult.ok).toBe(false);
      if (joinResult.ok) return;
      expect(joinResult.error).toBeInstanceOf(JoinError);
      expect(joinResult.error).toMatchObject({ reason: 'wrong-code', attemptsLeft: left });
    }
    expect(book.status()?.state).toBe('failed');
    expect(counters.snapshot()['join.wrong_codes']).toBe(3);
    // Closed for good: the right code now gets nothing either.
    const late = await attempt(book, invitation.code);
    expect(late.inviterResult).toBe('silent');
  });

  it('decides at the PROOF: an exchange begun before the invitation closed is refused as closed', async () => {
    const { book } = setup();
    const invitation = book.open();
    const [joinerLink, inviterLink] = memoryLinkPair();
    const answered = new Promise<Awaited<ReturnType<typeof answerJoin>>>((resolve) => {
      inviterLink.once('frame', (frame) => {
        const hello = decodeJoinHello(frame);
        const answerer = hello === undefined ? undefined : book.answererFor(hello.discriminator);
        if (hello === undefined || answerer === undefined) throw new Error('no answerer');
        book.cancel();
        void answerJoin(inviterLink, hello, answerer, 2000).then(resolve);
      });
    });
    const joined = joinWithCode(joinerLink, {
      code: parseInviteCode(invitation.code),
      identity: generateIdentity(),
      name: 'late',
      stepTimeoutMs: 2000,
    });
    await expect(joined).rejects.toMatchObject({ reason: 'closed' });
    expect(await answered).toEqual({ failed: 'refused' });
  });

  it('expires unused, and only the matching discriminator is answered', () => {
    vi.useFakeTimers();
    const { book, counters } = setup();
    const changes: (number | undefined)[] = [];
    book.on('change', (open) => changes.push(open?.id));
    const invitation = book.open({ ttlMs: 60_000 });
    expect(book.answererFor((invitation.discriminator + 1) % 100)).toBeUndefined();
    expect(book.answererFor(invitation.discriminator)).toBeDefined();
    vi.advanceTimersByTime(60_000);
    expect(book.status()?.state).toBe('expired');
    expect(book.answererFor(invitation.discriminator)).toBeUndefined();
    expect(counters.snapshot()['join.expired']).toBe(1);
    expect(changes).toEqual([invitation.id, undefined]);
  });

  it('refuses options out of range with a typed error', () => {
    const { book } = setup();
    expect(() => book.open({ ttlMs: 2 * 60 * 60_000 })).toThrow(/1 s to 60 min/);
    expect(() => book.open({ attempts: 0 })).toThrow(/1 to 10 wrong codes/);
  });

  it('gives a joiner that reaches no inviter a timeout, not a hang', async () => {
    const [joinerLink] = memoryLinkPair();
    await expect(
      joinWithCode(joinerLink, {
        code: generateInviteCode(),
        identity: generateIdentity(),
        name: 'x',
        stepTimeoutMs: 50,
      }),
    ).rejects.toMatchObject({ reason: 'timeout' });
  });
});
