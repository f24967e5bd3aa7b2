// What this agent announces about itself (PROTOCOL.md §13.2 `about`): its board and software version, each cut
// to the 63 characters an announcement allows.
import type { BoardDetection } from '../../boards/index.js';
import { VERSION } from '../core/version.js';
import { MAX_ANNOUNCED_NAME_CHARS } from '../protocol/announcement.js';
import type { AgentAbout } from '../protocol/index.js';

export function selfAbout(board: BoardDetection): AgentAbout {
  return { board: announcedText(board.model ?? board.profile.name), software: announcedText(VERSION) };
}

function announcedText(text: string): string {
  const cut = [...text.trim()].slice(0, MAX_ANNOUNCED_NAME_CHARS).join('');
  return cut === '' ? 'unknown' : cut;
}
