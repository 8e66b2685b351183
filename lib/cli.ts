/**
 * The `lapps` command line. Exit codes: 0 success, 1 failure (bad config, startup or stop
 * failure), 2 usage error; a second SIGINT/SIGTERM while stopping exits with 130/143.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { ConfigError } from './config/issues.js';
import { convertLappsHome, readLappsHome } from './config/lapps-compat.js';
import { integerArg, parseOverrides } from './config/overrides.js';
import { MAX_WORKERS } from './config/schema.js';
import { startedServices } from './config/service-graph.js';
import { loadConfig, type ConfigSource, type LoadedConfig } from './config/source.js';
import {
  issueToken,
  MAX_SUBJECT_BYTES,
  MAX_TTL_S,
  MIN_SECRET_BYTES,
  MIN_TTL_S,
  readSecretFile,
  subjectProblem,
} from './dev-token.js';
import { errorMessage } from './errors.js';
import { createLogger } from './log.js';
import { loadNative, policyProblem } from './native.js';
import { packageRoot } from './package-root.js';
import { startServer, type RunningServer } from './server.js';

const HELP = `Usage: lapps <command> [options]

WebSocket application server running Lua services.

Commands:
  start            Start the server (see "lapps start --help")
  check            Validate a config: lapps check [--config FILE | --lapps-home DIR]
  config convert   Print the lapps config equivalent to a LAppS home:
                   lapps config convert DIR
  cert dev         Write a self-signed certificate for localhost (development wss://)
  token            Print a development token (HS256 JWT): lapps token --secret-file F
                   --sub NAME --aud AUD [--ttl SECONDS]
  help             Show this help

Options:
  -h, --help     Show help
  -v, --version  Print the version

Docs: docs/config.md (config file), docs/lua-api.md (services),
docs/lapps-migration.md (running LAppS services and configs)
`;

const START_HELP = `Usage: lapps start [--config FILE | --lapps-home DIR] [--host H] [--port P]
                   [--workers N]

Starts the server in the foreground. Without --config or --lapps-home it reads the
LAppS home in $LAPPS_HOME when that is set, else serves the bundled echo service at
ws://127.0.0.1:5083/echo. SIGINT/SIGTERM stop it gracefully (clients get close
code 1001); a second signal exits at once. SIGHUP re-reads the config and applies its
ACLs, Origin policies and TLS certificates without dropping connections.

Options:
  -c, --config FILE    Config file (JSON, see docs/config.md)
      --lapps-home DIR LAppS home: reads etc/conf/ws.json and lapps.json (LAPPS_CONF_DIR,
                       WS_CONFIG and LAPPS_CONFIG apply; see docs/lapps-migration.md)
      --host H         Address of the first listener (IPv4 or IPv6), replacing
                       the config's
  -p, --port P         Port of the first listener, 0-65535 (0 = any free port)
  -w, --workers N      IO worker threads, 1-${MAX_WORKERS} (default: the config's, else
                       the number of cores)
  -h, --help           Show this help
`;

const CHECK_HELP = `Usage: lapps check [--config FILE | --lapps-home DIR]

Validates a config without starting anything: prints "ok: N services" and exits 0,
or prints every problem and exits 1. Without options it checks the LAppS home in
$LAPPS_HOME.

Options:
  -c, --config FILE    Config file (JSON, see docs/config.md)
      --lapps-home DIR LAppS home (see docs/lapps-migration.md)
  -h, --help           Show this help
`;

const CONFIG_HELP = `Usage: lapps config convert [DIR]

Prints the lapps config equivalent to the LAppS home DIR (default: $LAPPS_HOME) as
JSON on stdout, with absolute service paths; warnings about LAppS keys lapps does
not use go to stderr. LAPPS_CONF_DIR, WS_CONFIG and LAPPS_CONFIG apply.

Options:
  -h, --help           Show this help
`;

const CERT_HELP = `Usage: lapps cert dev [--out DIR] [--days N] [--force]

Writes DIR/localhost.crt and DIR/localhost.key (default DIR: certs): a self-signed
certificate for localhost, 127.0.0.1 and ::1, for development only. Use it in a
listener's "tls" ({"cert": "certs/localhost.crt", "key": "certs/localhost.key"}) and
give clients the .crt as their trusted CA.

Options:
      --out DIR        Directory to write to (created if missing; default: certs)
      --days N         Validity in days, 1-825 (default: 30)
      --force          Overwrite existing files
  -h, --help           Show this help
`;

const TOKEN_HELP = `Usage: lapps token --secret-file FILE --sub NAME --aud AUDIENCE [--ttl SECONDS]

Prints a development token: an HS256 JWT {sub, aud, iat, exp} signed with the secret in
FILE (at least ${MIN_SECRET_BYTES} bytes; one trailing newline ignored), for clients that are
not pages, e.g. ws://127.0.0.1:5083/chat?token=TOKEN. The same tokens as the static
server's POST /token (static.dev_tokens); development only (docs/security.md).

Options:
      --secret-file FILE  The HMAC secret (e.g. services/chat/dev-secret.txt)
      --sub NAME          The subject: 1-${MAX_SUBJECT_BYTES} bytes, no control characters
      --aud AUDIENCE      The audience the service verifies (the chat example: chat)
      --ttl SECONDS       Lifetime, ${MIN_TTL_S}-${MAX_TTL_S} (default: 600)
  -h, --help              Show this help
`;

/** A command-line mistake: reported with a hint and exit code 2. */
class UsageError extends Error {}

type Command =
  | { kind: 'help'; text: string }
  | { kind: 'version' }
  | { kind: 'start'; source: ConfigSource }
  | { kind: 'check'; source: ConfigSource }
  | { kind: 'convert'; home: string }
  | { kind: 'cert'; out: string; days: number; force: boolean }
  | { kind: 'token'; secretFile: string; sub: string; aud: string; ttl: number };

/** The package version, read from package.json so it can never drift from the release. */
export function version(): string {
  const pkg = JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

function integerOption(name: string, value: string | undefined, min: number, max: number) {
  if (value === undefined) return undefined;
  const n = integerArg(value);
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

/** `lapps token ...`: options of its own, so it is parsed apart from the others. */
function parseToken(argv: string[]): Command {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        'secret-file': { type: 'string' },
        sub: { type: 'string' },
        aud: { type: 'string' },
        ttl: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw usageFromParseError(err);
  }
  const { values, positionals } = parsed;
  if (values.help) return { kind: 'help', text: TOKEN_HELP };
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const secretFile = values['secret-file'];
  if (!secretFile) throw new UsageError('token needs --secret-file FILE');
  if (values.sub === undefined) throw new UsageError('token needs --sub NAME');
  const problem = subjectProblem(values.sub);
  if (problem) throw new UsageError(`--sub: ${problem.replace(/^sub /, '')}`);
  if (!values.aud) throw new UsageError('token needs --aud AUDIENCE (the chat example: chat)');
  const ttl = integerOption('ttl', values.ttl, MIN_TTL_S, MAX_TTL_S) ?? 600;
  return { kind: 'token', secretFile, sub: values.sub, aud: values.aud, ttl };
}

/** `lapps token`: prints the token; exit 1 when the secret file cannot be used. */
function printToken(c: Extract<Command, { kind: 'token' }>): number {
  try {
    const secret = readSecretFile(path.resolve(c.secretFile));
    const { token } = issueToken({ secret, sub: c.sub, audience: c.aud, ttlS: c.ttl });
    process.stdout.write(`${token}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`lapps token: ${errorMessage(err)}\n`);
    return 1;
  }
}

function parse(argv: string[]): Command {
  if (argv[0] === 'token') return parseToken(argv.slice(1));
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: 'string', short: 'c' },
        'lapps-home': { type: 'string' },
        host: { type: 'string' },
        port: { type: 'string', short: 'p' },
        workers: { type: 'string', short: 'w' },
        out: { type: 'string' },
        days: { type: 'string' },
        force: { type: 'boolean' },
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
    const topic = rest[0];
    const text =
      topic === 'start'
        ? START_HELP
        : topic === 'check'
          ? CHECK_HELP
          : topic === 'config'
            ? CONFIG_HELP
            : topic === 'cert'
              ? CERT_HELP
              : topic === 'token'
                ? TOKEN_HELP
                : HELP;
    return { kind: 'help', text };
  }
  if (command !== 'start' && command !== 'check' && command !== 'config' && command !== 'cert') {
    throw new UsageError(`unknown command "${command}"`);
  }
  if (values.help) {
    const text =
      command === 'start'
        ? START_HELP
        : command === 'check'
          ? CHECK_HELP
          : command === 'cert'
            ? CERT_HELP
            : CONFIG_HELP;
    return { kind: 'help', text };
  }
  if (command === 'cert') {
    const [sub, extra] = rest;
    if (sub !== 'dev') {
      throw new UsageError(
        sub === undefined
          ? 'missing subcommand: lapps cert dev'
          : `unknown subcommand "cert ${sub}"`,
      );
    }
    if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`);
    for (const name of ['config', 'lapps-home', 'host', 'port', 'workers'] as const) {
      if (values[name] !== undefined)
        throw new UsageError(`--${name} is not an option of cert dev`);
    }
    if (values.out === '') throw new UsageError('--out needs a directory');
    const days = integerOption('days', values.days, 1, 825) ?? 30;
    return { kind: 'cert', out: values.out ?? 'certs', days, force: values.force === true };
  }
  for (const name of ['out', 'days', 'force'] as const) {
    if (values[name] !== undefined) throw new UsageError(`--${name} is an option of cert dev only`);
  }
  if (values.config === '') throw new UsageError('--config needs a file name');
  if (values['lapps-home'] === '') throw new UsageError('--lapps-home needs a directory');
  if (values.config !== undefined && values['lapps-home'] !== undefined) {
    throw new UsageError('give --config or --lapps-home, not both');
  }
  const source: ConfigSource = {};
  if (values.config !== undefined) source.config = values.config;
  if (values['lapps-home'] !== undefined) source.lappsHome = values['lapps-home'];
  // LAppS's own variable selects its home when nothing else says which config to use.
  const envHome = process.env.LAPPS_HOME;
  if (source.config === undefined && source.lappsHome === undefined && envHome) {
    source.lappsHome = envHome;
  }

  if (command !== 'start') {
    for (const name of ['host', 'port', 'workers'] as const) {
      if (values[name] !== undefined) throw new UsageError(`--${name} is an option of start only`);
    }
  }
  if (command === 'config') {
    const [sub, dir, extra] = rest;
    if (sub !== 'convert') {
      throw new UsageError(
        sub === undefined
          ? 'missing subcommand: lapps config convert DIR'
          : `unknown subcommand "config ${sub}"`,
      );
    }
    if (values.config !== undefined)
      throw new UsageError('config convert takes a LAppS home, not --config');
    if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`);
    if (dir !== undefined && values['lapps-home'] !== undefined) {
      throw new UsageError('give the LAppS home once (DIR or --lapps-home)');
    }
    const home = dir ?? source.lappsHome;
    if (home === undefined || home === '') {
      throw new UsageError('config convert needs the LAppS home: lapps config convert DIR');
    }
    return { kind: 'convert', home };
  }
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  if (command === 'check') {
    if (source.config === undefined && source.lappsHome === undefined) {
      throw new UsageError('check needs --config FILE or --lapps-home DIR (or LAPPS_HOME set)');
    }
    return { kind: 'check', source };
  }

  try {
    const overrides = parseOverrides(values);
    return { kind: 'start', source: { ...source, overrides } };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const bad = err.issues[0];
    throw new UsageError(bad ? `${bad.path} ${bad.message}` : err.message);
  }
}

function listenerUrl(host: string, port: number | undefined, tls: boolean): string {
  return `${tls ? 'wss' : 'ws'}://${host.includes(':') ? `[${host}]` : host}:${port ?? '?'}`;
}

/** `lapps cert dev`: a self-signed localhost certificate for development. */
function certDev(out: string, days: number, force: boolean): number {
  const cert = path.resolve(out, 'localhost.crt');
  const key = path.resolve(out, 'localhost.key');
  try {
    mkdirSync(path.resolve(out), { recursive: true });
    loadNative().writeDevCertificate(cert, key, days, force);
  } catch (err) {
    process.stderr.write(`lapps cert dev: ${errorMessage(err)}\n`);
    return 1;
  }
  process.stdout.write(
    `wrote ${cert}\n      ${key} (valid ${days} days, localhost 127.0.0.1 ::1; development only)\n` +
      `listener: { "port": 5443, "tls": { "cert": "${cert}", "key": "${key}" } }\n` +
      `clients trust it with: NODE_EXTRA_CA_CERTS=${cert}, curl --cacert, openssl s_client -CAfile\n`,
  );
  return 0;
}

/** `lapps check`: validates and says how many services; exit 0 or 1. */
function check(source: ConfigSource): number {
  try {
    const { config, warnings } = loadConfig(source);
    for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
    const problem = policyProblem(config);
    if (problem !== undefined) {
      process.stderr.write(`${source.config ?? source.lappsHome ?? 'config'}: ${problem}\n`);
      return 1;
    }
    const n = config.services.length;
    process.stdout.write(`ok: ${n} service${n === 1 ? '' : 's'}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    return 1;
  }
}

/**
 * `lapps config convert DIR`: the equivalent lapps config on stdout, validated first so
 * that what is printed is a config `lapps start --config` accepts.
 */
function convert(home: string): number {
  try {
    const { raw, warnings } = convertLappsHome(home);
    readLappsHome(home); // validates; its warnings are the same as convertLappsHome's
    for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
    process.stdout.write(`${JSON.stringify(raw, null, 2)}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    return 1;
  }
}

/** Runs the server until a signal stops it; resolves with the exit code. */
async function start(source: ConfigSource): Promise<number> {
  let loaded: LoadedConfig;
  try {
    loaded = loadConfig(source);
  } catch (err) {
    // A config problem is the user's to fix: the message says where; a stack would not help.
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    throw err;
  }
  const { config, warnings } = loaded;

  const logger = createLogger(config.log);
  for (const w of warnings) logger.warn(w);
  let server: RunningServer;
  try {
    server = await startServer(config, { logger, source });
  } catch (err) {
    logger.error(`cannot start: ${errorMessage(err)}`);
    return 1;
  }

  // The URLs carry the bound ports, so `--port 0` still tells where to connect.
  const started = startedServices(config);
  for (const s of config.services) {
    const instances = `${s.instances} instance${s.instances === 1 ? '' : 's'}`;
    if (!started.has(s.name)) {
      logger.info(`service ${s.name} not started (auto_start false, no started service needs it)`);
    } else if (s.standalone) {
      logger.info(`service ${s.name} (standalone, ${instances}) running`);
    } else {
      logger.info(`service ${s.name} (${s.protocol}) at ${server.urls.get(s.name) ?? '?'}`);
    }
  }
  if (server.staticUrl) logger.info(`static files (development) at ${server.staticUrl}`);
  config.listeners.slice(1).forEach((l, i) => {
    logger.info(
      `also listening at ${listenerUrl(l.host, server.ports[i + 1], l.tls !== undefined)}`,
    );
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
      const since = performance.now();
      // What clients sent before now is handled and answered before they get 1001.
      const open = server.counters().connections_open;
      const bound = config.limits.drain_timeout_ms / 1000;
      logger.info(
        `stopping (${signal}): draining ${open} connection${open === 1 ? '' : 's'} (up to ${bound} s)`,
      );
      server.stop().then(
        () => {
          clearInterval(keepAlive);
          logger.info(`stopped in ${((performance.now() - since) / 1000).toFixed(2)} s`);
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
    // SIGHUP: the reloadable part of the config (ACLs, Origin policies, certificates).
    process.on('SIGHUP', () => server.reload());
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
    case 'check':
      process.exitCode = check(command.source);
      return;
    case 'convert':
      process.exitCode = convert(command.home);
      return;
    case 'cert':
      process.exitCode = certDev(command.out, command.days, command.force);
      return;
    case 'token':
      process.exitCode = printToken(command);
      return;
    case 'start':
      // Exit explicitly: native threads or sockets left by a failed start must not keep
      // the process alive after the outcome has been reported.
      process.exit(await start(command.source));
  }
}
