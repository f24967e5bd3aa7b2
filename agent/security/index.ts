// The secure channel's public surface: what the links layer and tests import.
// Noise internals stay importable from ./noise.js for vectors and tooling, but are not re-exported here.
export {
  HandshakeError,
  type HandshakeFailureReason,
  NoiseDecryptError,
  NoiseNonceExhaustedError,
  NoiseProtocolError,
} from './errors.js';
export {
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  establishSecureLink,
  MESH_KEY_BYTES,
  type SecureLinkOptions,
} from './secure-channel.js';
export { SecureLink, type SecureLinkEvents } from './secure-link.js';
