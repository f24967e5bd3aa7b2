// Splits a byte stream into newline-terminated lines with a hard length limit, so one client that
// never sends a newline cannot grow our memory without bound.

export class LineReader {
  #buffered: Buffer[] = [];
  #bufferedBytes = 0;

  constructor(private readonly maxLineBytes: number) {}

  /** Returns the complete lines in `chunk`, or 'too-long' once a line exceeds the limit. */
  push(chunk: Buffer): string[] | 'too-long' {
    const lines: string[] = [];
    let start = 0;
    for (let newline = chunk.indexOf(10, start); newline !== -1; newline = chunk.indexOf(10, start)) {
      this.#buffered.push(chunk.subarray(start, newline));
      lines.push(Buffer.concat(this.#buffered).toString('utf8'));
      this.#buffered = [];
      this.#bufferedBytes = 0;
      start = newline + 1;
    }
    if (start < chunk.length) {
      this.#buffered.push(chunk.subarray(start));
      this.#bufferedBytes += chunk.length - start;
      if (this.#bufferedBytes > this.maxLineBytes) return 'too-long';
    }
    return lines;
  }
}
