// The name a pushed file gets in an inbox, from the name its sender offers. A person reads that name in a
// file manager or a terminal and trusts it, so the rules are about what a person sees:
//
//   refused   what cannot be trusted or has no honest reading: control characters (C0, DEL, C1, line and
//             paragraph separators: a terminal acts on them), bidirectional embeddings, overrides and
//             isolates (they reorder what is shown: "invoice<U+202E>fdp.exe" shows as "invoiceexe.pdf"),
//             path separators, '.' and '..', names longer than 255 bytes, names with nothing visible left
//             (empty, only spaces or dots) and hidden names (starting with '.');
//   sanitised what a person still recognises once it is cleaned: invisible characters (zero-width space,
//             word joiner, soft hyphen, BOM, the bidi marks LRM, RLM and ALM, Hangul fillers, tag
//             characters) are removed, runs of spaces become one and the ends are trimmed (a long run of
//             spaces pushes the real extension out of view), and the result is in Unicode NFC (a name typed
//             on a Mac and one typed elsewhere look the same and are the same).
//
// Zero-width joiner and non-joiner stay: Persian, Indic scripts and emoji need them. Both sides apply the
// same rules: the sender refuses early what the receiver would refuse, and offers the cleaned name.
import { textLengthProblem } from './fields.js';
import { MAX_FILE_NAME_BYTES } from './transfer.js';

const CONTROL = /[\p{Cc}\u2028\u2029]/u;
const BIDI_OVERRIDE = /[\u202a-\u202e\u2066-\u2069]/u;
const INVISIBLE =
  /[\u00ad\u061c\u115f\u1160\u180e\u200b\u200e\u200f\u2060-\u2064\u3164\ufeff\uffa0\u{e0000}-\u{e007f}]/gu;
const SPACES = /\s+/gu;

/** The name to create in an inbox for an offered one, or why none can be. */
export type InboxFileName = { name: string } | { problem: string };

export function inboxFileName(offered: string): InboxFileName {
  const problem =
    textLengthProblem(offered, MAX_FILE_NAME_BYTES) ??
    (CONTROL.test(offered) ? 'contains a control character' : null) ??
    (BIDI_OVERRIDE.test(offered)
      ? 'contains a bidirectional override or isolate (it can show another name than the real one)'
      : null) ??
    (offered.includes('/') || offered.includes('\\') ? 'contains a path separator' : null);
  if (problem !== null) return { problem };
  const name = offered.replace(INVISIBLE, '').replace(SPACES, ' ').trim().normalize('NFC');
  if (name === '') return { problem: 'has no visible character' };
  if (/^\.+$/.test(name)) return { problem: 'is only dots' };
  if (name.startsWith('.')) return { problem: 'starts with "." (hidden names are not received)' };
  const cleaned = textLengthProblem(name, MAX_FILE_NAME_BYTES);
  return cleaned === null ? { name } : { problem: cleaned };
}

/** Why `name` cannot be offered or received, or null when it can (possibly cleaned, see inboxFileName). */
export function fileNameProblem(name: string): string | null {
  const result = inboxFileName(name);
  return 'problem' in result ? result.problem : null;
}
