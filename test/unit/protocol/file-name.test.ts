// The name a pushed file gets in an inbox (agent/protocol/file-name.ts): what cannot be trusted is refused
// with a reason a person understands, what a person still recognises is cleaned, and cleaning is stable
// (a cleaned name, offered again, stays as it is and is never refused).
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { fileNameProblem, inboxFileName } from '../../../agent/protocol/file-name.js';
import { MAX_FILE_NAME_BYTES } from '../../../agent/protocol/transfer.js';

describe('refused', () => {
  test.each([
    ['a path', 'a/b', /path separator/],
    ['an absolute path', '/etc/passwd', /path separator/],
    ['a Windows path', 'a\\b', /path separator/],
    ['a climb out', '../x', /path separator/],
    ['the parent', '..', /only dots/],
    ['the directory itself', '.', /only dots/],
    ['only dots', '....', /only dots/],
    ['NUL', 'a\u0000b', /control character/],
    ['a newline', 'line\nbreak', /control character/],
    ['a terminal escape', 'a\u001b[31mred', /control character/],
    ['DEL', 'a\u007fb', /control character/],
    ['a C1 control (CSI)', 'a\u009bb', /control character/],
    ['NEL', 'a\u0085b', /control character/],
    ['a line separator', 'a\u2028b', /control character/],
    ['a right-to-left override', 'invoice\u202efdp.exe', /bidirectional/],
    ['a left-to-right override', '\u202dphoto.jpg', /bidirectional/],
    ['a right-to-left embedding', 'a\u202bb.txt', /bidirectional/],
    ['a pop formatting', 'a\u202cb.txt', /bidirectional/],
    ['a right-to-left isolate', 'report\u2067fdp.exe\u2069', /bidirectional/],
    ['a first-strong isolate', '\u2068a.txt', /bidirectional/],
    ['empty', '', /empty/],
    ['only spaces', '   ', /no visible character/],
    ['only other spaces', '\u00a0\u3000\u2003', /no visible character/],
    ['only invisible characters', '\u200b\u2060\ufeff', /no visible character/],
    ['spaces and dots', ' . . ', /starts with "."/],
    ['dots after trimming', '  ..  ', /only dots/],
    ['hidden', '.bashrc', /hidden/],
    ['hidden after trimming', '  .ssh', /hidden/],
    ['hidden behind a zero-width space', '\u200b.profile', /hidden/],
    ['a part file name', '.abcdef.part', /hidden/],
    ['longer than 255 bytes', 'a'.repeat(256), /longer than 255 bytes/],
    ['longer than 255 bytes of UTF-8', 'é'.repeat(128), /longer than 255 bytes/],
    ['a lone surrogate', '\ud800', /lone surrogate/],
  ])('%s: %j', (_what, name, reason) => {
    const result = inboxFileName(name);
    expect(result).toEqual({ problem: expect.stringMatching(reason) });
    expect(fileNameProblem(name)).toMatch(reason);
  });
});

describe('cleaned', () => {
  test.each([
    ['spaces at the ends', '  report.pdf ', 'report.pdf'],
    ['a run of spaces hiding the extension', `photo.jpg${' '.repeat(80)}.exe`, 'photo.jpg .exe'],
    ['other spaces in a run', 'a\u00a0\u00a0 b.txt', 'a b.txt'],
    ['a zero-width space', 'pay\u200bpal.pdf', 'paypal.pdf'],
    ['a word joiner and a BOM', '\ufeffnotes\u2060.txt', 'notes.txt'],
    ['a soft hyphen', 'in\u00advoice.pdf', 'invoice.pdf'],
    ['left-to-right and right-to-left marks', '\u200ereport\u200f.pdf', 'report.pdf'],
    ['an Arabic letter mark', 'ملف\u061c.txt', 'ملف.txt'],
    ['a Hangul filler', '\u3164a.txt', 'a.txt'],
    ['tag characters (hidden ASCII)', 'a\u{e0069}\u{e0067}.txt', 'a.txt'],
    ['decomposed accents (NFD)', 'Übersicht.pdf'.normalize('NFD'), 'Übersicht.pdf'],
  ])('%s: %j', (_what, name, cleaned) => {
    expect(inboxFileName(name)).toEqual({ name: cleaned });
    expect(fileNameProblem(name)).toBeNull();
  });
});

describe('kept as they are', () => {
  test.each([
    ['photo.jpg'],
    ['a..b.txt'],
    ['Übersicht (1).pdf'],
    ['a'.repeat(MAX_FILE_NAME_BYTES)],
    ['日本語.txt'],
    ['שלום.txt'],
    ['می‌خواهم.txt'], // Persian needs its zero-width non-joiner
    ['👨‍👩‍👧.png'], // an emoji family needs its zero-width joiners
    ['trailing dot.'],
  ])('%j', (name) => {
    expect(inboxFileName(name)).toEqual({ name });
  });
});

test('a cleaned name is clean: offered again it stays the same, and it is never refused', () => {
  const alphabet = fc.constantFrom(
    'a',
    '.',
    ' ',
    '\u00a0',
    '\u200b',
    '\u200c',
    '\u200d',
    '\u200e',
    '\u00ad',
    '\ufeff',
    'e',
    '\u0301',
    'É',
    '日',
    '\u{e0041}',
  );
  fc.assert(
    fc.property(fc.array(alphabet, { minLength: 1, maxLength: 40 }), (chars) => {
      const first = inboxFileName(chars.join(''));
      if ('problem' in first) return;
      expect(inboxFileName(first.name)).toEqual({ name: first.name });
      expect(first.name).toBe(first.name.trim());
      expect(first.name.startsWith('.')).toBe(false);
    }),
  );
});
