// The serial console's line editor. It reads every byte itself, so no byte on the line can do more than
// edit the line: Ctrl-Z, Ctrl-\ and Ctrl-D never raise a signal or end the session (node:readline in
// terminal mode stops the whole process on Ctrl-Z and closes on Ctrl-D), and a line is never longer than
// `maxLineChars`: past it the rest is dropped and the line, once entered, is refused. Keys: printable
// text, Enter (CR, LF or CRLF), Backspace, Ctrl-C, arrows and Ctrl-A/E/B/F (moving), Home/End/Delete,
// up/down and Ctrl-P/N (history), Ctrl-U/K/W (deleting), Ctrl-L (redraw) and Tab (completion).
// A key costs the same whatever arrives: an edit that needs the line redrawn redraws it once per read,
// not once per key, and a Tab completes only when it ends a read (within a read it is pasted text, as
// in readline), so a pasted flood costs no more than typing it.
import { StringDecoder } from 'node:string_decoder';

export const MAX_LINE_CHARS = 4096;
/** Parameter bytes kept of an escape sequence; the rest of an overlong one is skipped, not stored. */
const MAX_ESCAPE_PARAMS = 8;
/** The column count assumed when listing completions: a serial line does not say its width. */
const LIST_WIDTH = 80;

export interface EnteredLine {
  text: string;
  /** Typed without echo (a password); never kept in the history. */
  secret: boolean;
  /** More than `maxLineChars` were typed: `text` is empty and the line must not run. */
  tooLong: boolean;
}

export interface LineEditorOptions {
  /** Terminal output: echo and redraws, lines ended with CRLF. */
  write(text: string): void;
  onLine(line: EnteredLine): void;
  /** Ctrl-C (the editor has already dropped a secret being typed). */
  onInterrupt(): void;
  /** Candidates for the text before the cursor, and the word they would replace. */
  complete(before: string): [string[], string];
  historySize?: number;
  maxLineChars?: number;
}

type EscapeState = 'none' | 'escape' | 'csi' | 'ss3';

export class LineEditor {
  readonly #options: LineEditorOptions;
  readonly #maxLineChars: number;
  readonly #historySize: number;
  readonly #decoder = new StringDecoder('utf8');
  /** One entry per code point, so the cursor never splits a character. */
  #chars: string[] = [];
  #cursor = 0;
  #tooLong = false;
  #prompt = '';
  #secret = false;
  readonly #history: string[] = [];
  /** Where up/down is in the history; `#history.length` is the line being typed, kept in `#draft`. */
  #historyIndex = 0;
  #draft: string[] = [];
  #escape: EscapeState = 'none';
  #escapeParams = '';
  /** A LF right after a CR ends the same line. */
  #afterCr = false;
  /** Inside feed(): redraws wait for the end of the read. */
  #feeding = false;
  #redrawPending = false;
  /** The last key of the read so far was a Tab. */
  #tabPending = false;

  constructor(options: LineEditorOptions) {
    this.#options = options;
    this.#maxLineChars = options.maxLineChars ?? MAX_LINE_CHARS;
    this.#historySize = options.historySize ?? 100;
  }

  /** Bytes from the terminal. Invalid UTF-8 becomes U+FFFD. */
  feed(data: Buffer): void {
    this.#feeding = true;
    try {
      for (const char of this.#decoder.write(data)) this.#key(char);
      if (this.#tabPending) this.#complete();
    } finally {
      this.#feeding = false;
      this.#tabPending = false;
    }
    this.#flush();
  }

  /** Shows `text` and what is typed so far; with `secret` the next line is read without echo. */
  prompt(text: string, secret = false): void {
    this.#prompt = text;
    this.#secret = secret;
    this.#redraw();
  }

  /** Ctrl-C at the prompt: drops what was typed and prompts again. */
  discardLine(): void {
    this.#flush();
    this.#options.write('^C\r\n');
    this.#reset();
    this.#redraw();
  }

  /** What each control key does; the ones not here (Ctrl-Z, Ctrl-\, NUL, C1 codes ...) do nothing. */
  readonly #controlKeys = new Map<string, () => void>([
    ['\r', () => this.#enter()],
    ['\x03', () => this.#interrupt()],
    ['\x7f', () => this.#backspace()],
    ['\b', () => this.#backspace()],
    // Ctrl-D deletes under the cursor, as in readline, but never ends the session.
    ['\x04', () => this.#deleteRight()],
    ['\x01', () => this.#moveTo(0)],
    ['\x05', () => this.#moveTo(this.#chars.length)],
    ['\x02', () => this.#moveTo(this.#cursor - 1)],
    ['\x06', () => this.#moveTo(this.#cursor + 1)],
    ['\x15', () => this.#replace(this.#chars.slice(this.#cursor), 0)],
    ['\x0b', () => this.#replace(this.#chars.slice(0, this.#cursor), this.#cursor)],
    ['\x17', () => this.#deleteWordLeft()],
    ['\x0c', () => this.#clearScreen()],
    ['\x10', () => this.#browseHistory(-1)],
    ['\x0e', () => this.#browseHistory(1)],
    [
      '\t',
      () => {
        this.#tabPending = true;
      },
    ],
    [
      '\x1b',
      () => {
        this.#escape = 'escape';
      },
    ],
  ]);

  /** The final character of a CSI or SS3 sequence (or its number, before `~`), and what it does. */
  readonly #sequenceKeys = new Map<string, () => void>([
    ['A', () => this.#browseHistory(-1)],
    ['B', () => this.#browseHistory(1)],
    ['C', () => this.#moveTo(this.#cursor + 1)],
    ['D', () => this.#moveTo(this.#cursor - 1)],
    ['H', () => this.#moveTo(0)],
    ['1', () => this.#moveTo(0)],
    ['7', () => this.#moveTo(0)],
    ['F', () => this.#moveTo(this.#chars.length)],
    ['4', () => this.#moveTo(this.#chars.length)],
    ['8', () => this.#moveTo(this.#chars.length)],
    ['3', () => this.#deleteRight()],
  ]);

  #key(char: string): void {
    this.#tabPending = false;
    if (this.#escape !== 'none' && this.#escapeKey(char)) return;
    const afterCr = this.#afterCr;
    this.#afterCr = char === '\r';
    if (char === '\n') {
      if (!afterCr) this.#enter();
      return;
    }
    const action = this.#controlKeys.get(char);
    if (action !== undefined) action();
    else if (!isControl(char)) this.#insert(char);
  }

  /** Consumes `char` when it belongs to an escape sequence; false when it is an ordinary key after all. */
  #escapeKey(char: string): boolean {
    const code = char.codePointAt(0) ?? 0;
    if (this.#escape === 'escape') {
      this.#escapeParams = '';
      if (char === '[') this.#escape = 'csi';
      else if (char === 'O') this.#escape = 'ss3';
      else {
        this.#escape = 'none';
        return !isControl(char); // Alt+key: ignored
      }
      return true;
    }
    if (this.#escape === 'csi' && code >= 0x20 && code <= 0x3f) {
      if (code >= 0x30 && this.#escapeParams.length < MAX_ESCAPE_PARAMS) this.#escapeParams += char;
      return true;
    }
    this.#escape = 'none';
    if (code < 0x40 || code > 0x7e) return false;
    this.#sequence(char, this.#escapeParams);
    return true;
  }

  /** A complete CSI or SS3 sequence; modifiers (`1;5C`) are ignored, unknown sequences do nothing. */
  #sequence(final: string, params: string): void {
    this.#sequenceKeys.get(final === '~' ? (params.split(';')[0] ?? '') : final)?.();
  }

  #clearScreen(): void {
    this.#options.write('\x1b[H\x1b[2J');
    this.#redraw();
  }

  #enter(): void {
    const entered: EnteredLine = {
      text: this.#tooLong ? '' : this.#chars.join(''),
      secret: this.#secret,
      tooLong: this.#tooLong,
    };
    this.#flush();
    this.#options.write('\r\n');
    this.#reset();
    if (!entered.secret && !entered.tooLong) this.#remember(entered.text);
    this.#options.onLine(entered);
  }

  #interrupt(): void {
    if (this.#secret) {
      this.#flush();
      this.#options.write('^C\r\n');
      this.#reset();
    }
    this.#options.onInterrupt();
  }

  #reset(): void {
    this.#chars = [];
    this.#cursor = 0;
    this.#tooLong = false;
    this.#secret = false;
    this.#historyIndex = this.#history.length;
    this.#draft = [];
  }

  #insert(char: string): void {
    if (this.#chars.length >= this.#maxLineChars) {
      if (!this.#tooLong) this.#options.write('\x07');
      this.#tooLong = true;
      return;
    }
    this.#chars.splice(this.#cursor, 0, char);
    this.#cursor++;
    if (this.#cursor === this.#chars.length) this.#echo(char);
    else this.#redraw();
  }

  #backspace(): void {
    if (this.#cursor === 0) return;
    this.#chars.splice(--this.#cursor, 1);
    if (this.#cursor === this.#chars.length) this.#echo('\b \b');
    else this.#redraw();
  }

  #deleteRight(): void {
    if (this.#cursor >= this.#chars.length) return;
    this.#chars.splice(this.#cursor, 1);
    this.#redraw();
  }

  #deleteWordLeft(): void {
    let start = this.#cursor;
    while (start > 0 && this.#chars[start - 1] === ' ') start--;
    while (start > 0 && this.#chars[start - 1] !== ' ') start--;
    this.#replace([...this.#chars.slice(0, start), ...this.#chars.slice(this.#cursor)], start);
  }

  #replace(chars: string[], cursor: number): void {
    this.#chars = chars;
    this.#cursor = cursor;
    this.#redraw();
  }

  #moveTo(target: number): void {
    const cursor = Math.max(0, Math.min(this.#chars.length, target));
    const delta = cursor - this.#cursor;
    this.#cursor = cursor;
    if (delta !== 0) this.#echo(delta > 0 ? `\x1b[${delta}C` : `\x1b[${-delta}D`);
  }

  /** Output for one key (its echo, a cursor step): left out when the line is secret or is redrawn anyway. */
  #echo(text: string): void {
    if (!this.#secret && !this.#redrawPending) this.#options.write(text);
  }

  /** The prompt and the line, drawn again: now, or at the end of the read being handled. */
  #redraw(): void {
    this.#redrawPending = true;
    if (!this.#feeding) this.#flush();
  }

  #flush(): void {
    if (!this.#redrawPending) return;
    this.#redrawPending = false;
    const visible = this.#secret ? '' : this.#chars.join('');
    const back = this.#secret ? 0 : this.#chars.length - this.#cursor;
    this.#options.write(`\r${this.#prompt}${visible}\x1b[K${back > 0 ? `\x1b[${back}D` : ''}`);
  }

  #remember(line: string): void {
    if (line.trim() === '' || this.#history.at(-1) === line) return;
    this.#history.push(line);
    if (this.#history.length > this.#historySize) this.#history.shift();
    this.#historyIndex = this.#history.length;
  }

  /** Up/down: a line that ran over the bound stays put until Enter or Ctrl-C. */
  #browseHistory(step: -1 | 1): void {
    if (this.#secret || this.#tooLong) return;
    const index = Math.max(0, Math.min(this.#history.length, this.#historyIndex + step));
    if (index === this.#historyIndex) return;
    if (this.#historyIndex === this.#history.length) this.#draft = this.#chars;
    this.#historyIndex = index;
    const chars = index === this.#history.length ? this.#draft : [...(this.#history[index] ?? '')];
    this.#replace([...chars], chars.length);
  }

  /** Tab: completes the word as far as the candidates agree, or lists them when they part. */
  #complete(): void {
    if (this.#secret || this.#tooLong) return;
    const [candidates, word] = this.#options.complete(this.#chars.slice(0, this.#cursor).join(''));
    const common = commonPrefix(candidates);
    if (common.length > word.length) {
      for (const char of common.slice(word.length)) this.#insert(char);
    } else if (candidates.length > 1) {
      this.#flush();
      this.#options.write(`\r\n${columns(candidates)}`);
      this.#redraw();
    }
  }
}

function isControl(char: string): boolean {
  const code = char.codePointAt(0) ?? 0;
  return code < 0x20 || (code >= 0x7f && code <= 0x9f);
}

function commonPrefix(words: readonly string[]): string {
  let prefix = words[0] ?? '';
  for (const word of words) while (!word.startsWith(prefix)) prefix = prefix.slice(0, -1);
  return prefix;
}

function columns(words: readonly string[]): string {
  const width = Math.max(...words.map((word) => word.length)) + 2;
  const perRow = Math.max(1, Math.floor(LIST_WIDTH / width));
  let text = '';
  for (let start = 0; start < words.length; start += perRow)
    text += `${words
      .slice(start, start + perRow)
      .map((word) => word.padEnd(width))
      .join('')
      .trimEnd()}\r\n`;
  return text;
}
