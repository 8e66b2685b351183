/**
 * The lapps library API: start a server from a config, or load and validate configs.
 */
export { startServer, type RunningServer, type StartOptions } from './server.js';
export {
  applyOverrides,
  ConfigError,
  defaultConfig,
  loadConfigFile,
  normalizeConfig,
  startOrder,
  type ConfigIssue,
  type ConfigOrigin,
  type ConfigOverrides,
  type DefaultConfigOptions,
} from './config/load.js';
export { convertLappsHome, readLappsHome } from './config/lapps-compat.js';
export { createLogger, type Logger, type LogFields } from './log.js';
export type * from './config/types.js';
