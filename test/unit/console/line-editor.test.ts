// The serial console's line editor byte by byte: what each control key does (and that Ctrl-Z, Ctrl-\
// and Ctrl-D do nothing harmful), editing and history, completion, the bound on a line, and garbage.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type EnteredLine, LineEditor, MAX_LINE_CHARS } from '../../../agent/console/line-editor.js';

function editor(completions: string[] = []) {
  const lines: EnteredLine[] = [];
  let output = '';
  let interrupts = 0;
  const instance: LineEditor = new LineEditor({
    write: (text) => {
      output += text;
    },
    onLine: (line) => lines.push(line),
    onInterrupt: () => {
      interrupts++;
      instance.discardLine();
    },
    complete: (before) => {
      const word = before.split(' ').at(-1) ?? '';
      return [completions.filter((candidate) => candidate.startsWith(word)), word];
    },
  });
  instance.prompt('> ');
  return {
    instance,
    lines,
    texts: () => lines.map((line) => line.text),
    output: () => output,
    interrupts: () => interrupts,
    type: (text: string | Buffer) =>
      instance.feed(typeof text === 'string' ? Buffer.from(text, 'utf8') : text),
  };
}

describe('line editor', () => {
  it('runs a line on CR, LF or CRLF, once each, echoing what is typed', () => {
    const e = editor();
    e.type('status\rpeers\nlinks\r\nhelp\r');
    expect(e.texts()).toEqual(['status', 'peers', 'links', 'help']);
    expect(e.output()).toContain('status\r\npeers\r\n');
  });

  it('ignores Ctrl-Z, Ctrl-\\, NUL and Ctrl-D on an empty line; Ctrl-D deletes under the cursor', () => {
    const e = editor();
    e.type('\x1a\x1c\x00\x04\x1a');
    expect(e.lines).toEqual([]);
    e.type('sta\x1atus\x1c\r');
    expect(e.texts()).toEqual(['status']);
    e.type('statusx\x02\x04\r'); // Ctrl-B back onto the x, Ctrl-D deletes it
    expect(e.texts()).toEqual(['status', 'status']);
  });

  it('Ctrl-C drops the line being typed and reports the interrupt', () => {
    const e = editor();
    e.type('send bravo hi\x03status\r');
    expect(e.interrupts()).toBe(1);
    expect(e.texts()).toEqual(['status']);
    expect(e.output()).toMatch(/send bravo hi\^C\r\n\r> /);
  });

  it('edits: backspace, arrows, Home/End, Delete, Ctrl-A/E/U/K/W', () => {
    const e = editor();
    e.type('peerz\x7fs\r');
    e.type('eers\x1b[D\x1b[D\x1b[D\x1b[Dp\r'); // left arrow x4, insert at the start
    e.type('tatus\x1b[Hs\x1b[F!\x7f\r'); // Home, End
    e.type('xroutes\x01\x1b[3~\r'); // Ctrl-A then Delete
    e.type('junk\x15links\r'); // Ctrl-U
    e.type('help junk\x1bOD\x1bOD\x1bOD\x1bOD\x0b\r'); // SS3 left x4, Ctrl-K
    e.type('help one two\x17\x17\r'); // Ctrl-W twice
    expect(e.texts()).toEqual(['peers', 'peers', 'status', 'routes', 'links', 'help ', 'help ']);
  });

  it('recalls earlier lines with up/down (and Ctrl-P/N), keeping the line being typed', () => {
    const e = editor();
    e.type('status\rpeers\rpeers\r');
    e.type('rou\x1b[A\x1b[A\r');
    e.type('\x10\x10\x0e\r');
    e.type('rou\x1b[A\x1b[Btes\r');
    expect(e.texts()).toEqual(['status', 'peers', 'peers', 'status', 'status', 'routes']);
    e.type('\x1b[1;5A\r'); // a modified arrow is still an arrow
    expect(e.texts().at(-1)).toBe('routes');
  });

  it('completes a word as far as the candidates agree and lists them when they part', () => {
    const e = editor(['peers', 'push', 'status']);
    e.type('st\t');
    e.type('\r');
    expect(e.texts()).toEqual(['status']);
    e.type('p\t');
    expect(e.output()).toMatch(/peers +push\r\n/);
    e.type('e\t');
    e.type('\r');
    expect(e.texts()).toEqual(['status', 'peers']);
  });

  it('takes a Tab inside one read as pasted text, not completion', () => {
    const e = editor(['status']);
    e.type('st\tx\r');
    expect(e.texts()).toEqual(['stx']);
  });

  it('reads a secret line without echo and keeps it out of the history', () => {
    const e = editor();
    e.instance.prompt('password: ', true);
    const before = e.output().length;
    e.type('hunter2\r');
    expect(e.lines).toEqual([{ text: 'hunter2', secret: true, tooLong: false }]);
    expect(e.output().slice(before)).not.toContain('hunter2');
    e.type('\x1b[A');
    expect(e.output()).not.toContain('hunter2');
    e.instance.prompt('password: ', true);
    e.type('half-typed\x03');
    e.type('status\r');
    expect(e.lines.at(-1)).toEqual({ text: 'status', secret: false, tooLong: false });
  });

  it(`bounds a line at ${MAX_LINE_CHARS} characters: a longer one is refused whole, the next one runs`, () => {
    const e = editor();
    e.type('x'.repeat(MAX_LINE_CHARS * 3));
    expect(e.output().length).toBeLessThan(MAX_LINE_CHARS + 100);
    e.type('\r');
    expect(e.lines).toEqual([{ text: '', secret: false, tooLong: true }]);
    e.type('status\r');
    expect(e.lines.at(-1)).toEqual({ text: 'status', secret: false, tooLong: false });
    const exact = 'y'.repeat(MAX_LINE_CHARS);
    e.type(`${exact}\r`);
    expect(e.lines.at(-1)).toEqual({ text: exact, secret: false, tooLong: false });
  });

  it('takes random binary and endless escape sequences without throwing or growing, then works', () => {
    const e = editor(['status']);
    for (let round = 0; round < 64; round++) e.type(randomBytes(16 * 1024));
    e.type(`\x1b[${'9'.repeat(100_000)}`);
    e.type('\x03status\r');
    expect(e.lines.at(-1)).toEqual({ text: 'status', secret: false, tooLong: false });
    for (const line of e.lines) expect(line.text.length).toBeLessThanOrEqual(MAX_LINE_CHARS);
  });

  it('takes UTF-8 split across reads, and invalid bytes as U+FFFD', () => {
    const e = editor();
    const text = Buffer.from('send bravo grüße\r', 'utf8');
    const split = text.indexOf(0xc3) + 1;
    e.type(text.subarray(0, split));
    e.type(text.subarray(split));
    e.type(Buffer.from([0x61, 0xff, 0x62, 0x0d]));
    expect(e.texts()).toEqual(['send bravo grüße', 'a\ufffdb']);
  });
});
