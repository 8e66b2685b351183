/**
 * Where a config comes from, and loading it from there: what `lapps start` reads at start
 * and again on each reload (`RunningServer.reload()`).
 */
import { readLappsHome } from './lapps-compat.js';
import { defaultConfig, loadConfigFile } from './load.js';
import { applyOverrides, type ConfigOverrides } from './overrides.js';
import type { LappsConfig } from './types.js';

/**
 * A lapps config file, a LAppS home, or neither (the default config: the bundled echo
 * service), with command-line overrides on top.
 */
export interface ConfigSource {
  /** A lapps config file (JSON, see docs/config.md). */
  config?: string;
  /** A LAppS home: etc/conf/ws.json and lapps.json (see docs/lapps-migration.md). */
  lappsHome?: string;
  /** Applied to whichever config is read. */
  overrides?: ConfigOverrides;
}

/** A loaded config and the warnings about LAppS keys lapps does not use. */
export interface LoadedConfig {
  config: LappsConfig;
  warnings: string[];
}

/**
 * Loads the config `source` names. Without a file or home: the default config, with as
 * many echo instances as `overrides.workers` asks for.
 *
 * @throws ConfigError
 */
export function loadConfig(source: ConfigSource = {}): LoadedConfig {
  const { overrides } = source;
  let loaded: LoadedConfig;
  if (source.config !== undefined) loaded = { config: loadConfigFile(source.config), warnings: [] };
  else if (source.lappsHome !== undefined) loaded = readLappsHome(source.lappsHome);
  else loaded = { config: defaultConfig({ workers: overrides?.workers }), warnings: [] };
  if (overrides === undefined) return loaded;
  return { config: applyOverrides(loaded.config, overrides), warnings: loaded.warnings };
}
