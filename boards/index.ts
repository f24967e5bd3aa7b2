// Public face of boards/: profiles (plain data) and detection. Import from here.
export {
  type BoardDetection,
  detectBoard,
  detectBoardSync,
  MODEL_FILES,
  matchBoard,
  normalizeModel,
} from './detect.js';
export {
  type BluetoothUart,
  BOARD_PROFILES,
  type BoardId,
  type BoardProfile,
  boardProfile,
  classifyRam,
  GENERIC_LINUX,
  type OverlayNote,
  type RadioQuirk,
  type RamClass,
  RPI_3B_PLUS,
  RPI_4B,
  RPI_5,
  RPI_CM4,
  RPI_ZERO_2_W,
} from './profiles.js';
