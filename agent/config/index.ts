// Public face of agent/config: import from here, not from the modules, so they can be rearranged.
// Schema, loading, defaults, errors and the mesh key helpers.
export {
  CONTROL_SOCKET_FILE,
  type DataDirInputs,
  defaultDataDir,
  defaultName,
  type Environment,
  MESH_KEY_FILE,
  processEnvironment,
  SYSTEM_DATA_DIR,
} from './defaults.js';
export { ConfigError, type ConfigIssue, formatConfigIssue, MeshKeyError } from './errors.js';
export { formatKeyPath } from './issues.js';
export {
  configFilePath,
  defaultConfig,
  type EnvironmentOptions,
  type LoadConfigOptions,
  loadConfig,
  parseConfigText,
} from './load.js';
export {
  checkMeshKey,
  generateMeshKey,
  loadMeshKey,
  MESH_KEY_BYTES,
  type MeshKeyCheck,
  parseMeshKey,
  saveMeshKey,
} from './mesh-key.js';
export {
  type BleEnabled,
  type Config,
  type ConfigFile,
  configSchema,
  DISCOVERY_METHODS,
  type DiscoveryMethod,
  KNOWN_KEYS,
  LOG_LEVELS,
  type LogLevel,
  type SchemaContext,
} from './schema.js';
