/**
 * The lapps library API: start a server from a config, or load and validate configs.
 */
export { startServer, type RunningServer, type StartOptions } from './server.js';
export { ConfigError, type ConfigIssue } from './config/issues.js';
export {
  defaultConfig,
  loadConfigFile,
  normalizeConfig,
  type ConfigOrigin,
  type DefaultConfigOptions,
} from './config/load.js';
export { applyOverrides, type ConfigOverrides } from './config/overrides.js';
export { startOrder } from './config/service-graph.js';
export { loadConfig, type ConfigSource, type LoadedConfig } from './config/source.js';
export { convertLappsHome, readLappsHome } from './config/lapps-compat.js';
export { CodedError, ERROR_CODES, type ErrorCode } from './errors.js';
export { createLogger, type Logger, type LogFields } from './log.js';
export type * from './config/types.js';
