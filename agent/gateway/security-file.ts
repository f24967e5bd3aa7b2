// The files of the MQTT endpoint's access control, in mosquitto's formats (password_file, acl_file): read
// once at start; a mistake stops the agent with the file and the line named.
import { readFile } from 'node:fs/promises';
import { NearmeshError } from '../core/errors.js';

/** Larger files are refused: they are hand-written or mosquitto_passwd's, never this big. */
const MAX_FILE_BYTES = 4 * 1024 * 1024;

/** A password or ACL file (or `[mqtt] anonymous` line) that cannot be used; `source` names where. */
export class MqttSecurityFileError extends NearmeshError {
  constructor(
    readonly source: string,
    readonly line: number | undefined,
    /** What is wrong, without where. */
    readonly problem: string,
  ) {
    super('mqtt-security-file', `${source}${line === undefined ? '' : `:${line}`}: ${problem}`);
  }
}

export interface ContentLine {
  /** 1-based, as an editor shows it. */
  readonly number: number;
  /** Without the blanks around it. */
  readonly text: string;
}

/** The lines that say something: not blank, not a `#` comment. */
export function contentLines(text: string): ContentLine[] {
  const lines: ContentLine[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line !== '' && !line.startsWith('#')) lines.push({ number: index + 1, text: line });
  });
  return lines;
}

/** The text of `path`, set by the config key `key`; a missing, unreadable or huge file is an error naming both. */
export async function readSecurityFile(key: string, path: string): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new MqttSecurityFileError(path, undefined, `cannot read it (${key}): ${reason}`);
  }
  if (bytes.length > MAX_FILE_BYTES)
    throw new MqttSecurityFileError(path, undefined, `larger than ${MAX_FILE_BYTES} bytes (${key})`);
  return bytes.toString('utf8');
}
