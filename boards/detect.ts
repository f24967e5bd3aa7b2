// Which board this is, from the device-tree model string the firmware passes to the kernel
// ("Raspberry Pi 4 Model B Rev 1.5\0"). /proc/device-tree is a symlink to /sys/firmware/devicetree/base;
// some containers and chroots have only one of them. Neither (x86, most VMs) means generic Linux.
// The file root is a parameter so tests read fixture trees; nothing here throws.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BOARD_PROFILES, type BoardProfile, GENERIC_LINUX } from './profiles.js';

/** Where the model string is looked for, in order (relative to the file root). */
export const MODEL_FILES = ['/proc/device-tree/model', '/sys/firmware/devicetree/base/model'] as const;

export interface BoardDetection {
  readonly profile: BoardProfile;
  /** The model string as read (NUL terminator and surrounding whitespace removed), or null when none. */
  readonly model: string | null;
  /** The file it was read from (as a path on the real system, without the test root), or null. */
  readonly source: (typeof MODEL_FILES)[number] | null;
}

/** Device-tree strings end with a NUL (and a list of strings is NUL-separated): keep the first string. */
export function normalizeModel(raw: string): string {
  const nul = raw.indexOf('\0');
  return (nul < 0 ? raw : raw.slice(0, nul)).trim();
}

/** The profile whose model prefix the model string starts with, at a word end; else generic Linux. */
export function matchBoard(model: string | null): BoardProfile {
  if (model === null) return GENERIC_LINUX;
  const text = normalizeModel(model);
  for (const profile of BOARD_PROFILES) {
    for (const prefix of profile.modelPrefixes) {
      if (!text.startsWith(prefix)) continue;
      const next = text.charAt(prefix.length);
      if (next === '' || /\s/.test(next)) return profile;
    }
  }
  return GENERIC_LINUX;
}

function detection(model: string | null, source: BoardDetection['source']): BoardDetection {
  return { profile: matchBoard(model), model, source };
}

/** Reads the model string under `root` ("/" on a real system) and picks the profile. Never throws. */
export async function detectBoard(root = '/'): Promise<BoardDetection> {
  for (const file of MODEL_FILES) {
    let model: string;
    try {
      model = normalizeModel(await readFile(join(root, file), 'utf8'));
    } catch {
      continue;
    }
    if (model !== '') return detection(model, file);
  }
  return detection(null, null);
}

/** This machine's board: read once, since it cannot change while the process runs. */
let thisMachine: BoardDetection | undefined;

/**
 * detectBoard for synchronous callers (config defaults are computed synchronously). The real root is
 * read once per process (the config loader and the agent both ask); other roots (tests) every time.
 */
export function detectBoardSync(root = '/'): BoardDetection {
  if (root !== '/') return readBoardSync(root);
  thisMachine ??= readBoardSync(root);
  return thisMachine;
}

function readBoardSync(root: string): BoardDetection {
  for (const file of MODEL_FILES) {
    let model: string;
    try {
      model = normalizeModel(readFileSync(join(root, file), 'utf8'));
    } catch {
      continue;
    }
    if (model !== '') return detection(model, file);
  }
  return detection(null, null);
}
