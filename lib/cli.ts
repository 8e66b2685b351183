/**
 * The `lapps` command line. Exit codes: 0 success, 1 failure (bad config, startup or stop
 * failure), 2 usage error; a second SIGINT/SIGTERM while stopping exits with 130/143.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';

import {
  applyOverrides,
  ConfigError,
  defaultConfig,
  loadConfigFile,
  type ConfigOverrides,
} from './config/load.js';
import { MAX_WORKERS } from './config/schema.js';
import type { LappsConfig } from './config/types.js';
import { createLogger } from './log.js';
import { packageRoot } from './native.js';
import { startServer, type RunningServer } from './server.js';

const HELP = `Usage: lapps <command> [options]

WebSocket application server running Lua services.

Commands:
  start          Start the server (see "lapps start --help")
  help           Show this help

Options:
  -h, --help     Show help
  -v, --version  Print the version

Docs: docs/config.md (config file), docs/lua-api.md (services)
`;

const START_HELP = `Usage: lapps start [--config FILE] [--host H] [--port P] [--workers N]

Starts the server in the foreground. Without --config it serves the bundled echo
service at ws://127.0.0.1:5083/echo. SIGINT/SIGTERM stop it gracefully (clients
get close code 1001); a second signal exits at once.

Options:
  -c, --config FILE    Config file (JSON, see docs/config.md)
      --host H         Address of the first listener (IPv4 or IPv6), replacing
                       the config's
  -p, --port P         Port of the first listener, 0-65535 (0 = any free port)
  -w, --workers N      IO worker threads, 1-${MAX_WORKERS} (default: the config's, else
                       the number of cores)
  -h, --help           Show this help
`;

/** A command-line mistake: reported with a hint and exit code 2. */
class UsageError extends Error {}

interface StartArgs {
  config?: string;
  overrides: ConfigOverrides;
}

type Command =
  { kind: 'help'; text: string } | { kind: 'version' } | { kind: 'start'; args: StartArgs };

/** The package version, read from package.json so it can never drift from the release. */
export function version(): string {
  const pkg = JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

function integerOption(name: string, value: string | undefined, min: number, max: number) {
  if (value === undefined) return undefined;
  const n = /^[0-9]+$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && n <= max)) {
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got "${value}"`);
  }
  return n;
}

/** Rewords node:util parseArgs errors, which suggest workarounds irrelevant here. */
function usageFromParseError(err: unknown): UsageError {
  const e = err as { code?: string; message?: string };
  const message = String(e.message ?? err);
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const option = /'([^']+)'/.exec(message)?.[1] ?? message;
    return new UsageError(`unknown option ${option}`);
  }
  const first = message.split('. ')[0] ?? message;
  return new UsageError(first.charAt(0).toLowerCase() + first.slice(1));
}

function parse(argv: string[]): Command {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: 'string', short: 'c' },
        host: { type: 'string' },
        port: { type: 'string', short: 'p' },
        workers: { type: 'string', short: 'w' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    throw usageFromParseError(err);
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;

  if (values.version) return { kind: 'version' };
  if (command === undefined) {
    if (values.help) return { kind: 'help', text: HELP };
    throw new UsageError('missing command');
  }
  if (command === 'help') {
    return { kind: 'help', text: rest[0] === 'start' ? START_HELP : HELP };
  }
  if (command !== 'start') throw new UsageError(`unknown command "${command}"`);
  if (values.help) return { kind: 'help', text: START_HELP };
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  if (values.config === '') throw new UsageError('--config needs a file name');
  if (values.host !== undefined && isIP(values.host) === 0) {
    throw new UsageError(`--host must be an IPv4 or IPv6 address, got "${values.host}"`);
  }
  const overrides: ConfigOverrides = {};
  if (values.host !== undefined) overrides.host = values.host;
  const port = integerOption('port', values.port, 0, 65535);
  if (port !== undefined) overrides.port = port;
  const workers = integerOption('workers', values.workers, 1, MAX_WORKERS);
  if (workers !== undefined) overrides.workers = workers;
  return { kind: 'start', args: { config: values.config, overrides } };
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function listenerUrl(host: string, port: number | undefined): string {
  return `ws://${host.includes(':') ? `[${host}]` : host}:${port ?? '?'}`;
}

/** Runs the server until a signal stops it; resolves with the exit code. */
async function start(args: StartArgs): Promise<number> {
  let config: LappsConfig;
  try {
    const base = args.config
      ? loadConfigFile(args.config)
      : defaultConfig({ workers: args.overrides.workers });
    config = applyOverrides(base, args.overrides);
  } catch (err) {
    // A config problem is the user's to fix: the message says where; a stack would not help.
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    throw err;
  }

  const logger = createLogger(config.log);
  let server: RunningServer;
  try {
    server = await startServer(config, { logger });
  } catch (err) {
    logger.error(`cannot start: ${errorMessage(err)}`);
    return 1;
  }

  // The URLs carry the bound ports, so `--port 0` still tells where to connect.
  for (const s of config.services) {
    logger.info(`service ${s.name} (${s.protocol}) at ${server.urls.get(s.name) ?? '?'}`);
  }
  config.listeners.slice(1).forEach((l, i) => {
    logger.info(`also listening at ${listenerUrl(l.host, server.ports[i + 1])}`);
  });
  const workers = `${config.workers} worker${config.workers === 1 ? '' : 's'}`;
  logger.info(`lapps ${version()} started: ${workers}`);

  return new Promise<number>((resolve) => {
    // The data plane runs on native threads; this timer keeps the main thread's event loop
    // (which delivers their events and our signals) alive whatever the addon refs.
    const keepAlive = setInterval(() => {}, 2 ** 31 - 1);
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn(`${signal} while stopping: exiting now`);
        process.exit(signal === 'SIGINT' ? 130 : 143);
      }
      stopping = true;
      logger.info(`stopping (${signal})`);
      server.stop().then(
        () => {
          clearInterval(keepAlive);
          logger.info('stopped');
          resolve(0);
        },
        (err: unknown) => {
          clearInterval(keepAlive);
          logger.error(`stop failed: ${errorMessage(err)}`);
          resolve(1);
        },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

/**
 * Entry point of the `lapps` binary. Sets `process.exitCode` for short commands and exits
 * the process when a started server has stopped.
 *
 * @param argv the arguments after the program name (`process.argv.slice(2)`).
 */
export async function main(argv: string[]): Promise<void> {
  let command: Command;
  try {
    command = parse(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`lapps: ${err.message}\nRun "lapps --help" for usage.\n`);
    process.exitCode = 2;
    return;
  }
  switch (command.kind) {
    case 'help':
      process.stdout.write(command.text);
      return;
    case 'version':
      process.stdout.write(`${version()}\n`);
      return;
    case 'start':
      // Exit explicitly: native threads or sockets left by a failed start must not keep
      // the process alive after the outcome has been reported.
      process.exit(await start(command.args));
  }
}
