#!/usr/bin/env node
/**
 * The npm "install" script: checks the native build prerequisites, installs missing ones
 * on Debian when running as root (otherwise stops with the exact command to run), then
 * builds the addon. LAPPS_SKIP_NATIVE=1 skips all of it (e.g. for docs-only work).
 *
 * Nothing is downloaded except Debian packages: cmake-js builds against the Node-API
 * headers it bundles (package.json "binary.napi_versions").
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';

import { addonFile, buildNative, root } from './build-native.mjs';

const APT_INSTALL = ['apt-get', 'install', '-y', '--no-install-recommends'];

function commandExists(name) {
  return spawnSync('sh', ['-c', `command -v "${name}"`], { stdio: 'ignore' }).status === 0;
}

/** Directories pkg-config searches on Debian, for when pkg-config itself is missing. */
function pcDirs() {
  const dirs = ['/usr/lib/pkgconfig', '/usr/share/pkgconfig', '/usr/local/lib/pkgconfig'];
  try {
    for (const d of readdirSync('/usr/lib')) dirs.push(path.join('/usr/lib', d, 'pkgconfig'));
  } catch {
    // no /usr/lib: nothing more to search
  }
  return dirs;
}

function pcExists(name) {
  if (commandExists('pkg-config')) {
    return spawnSync('pkg-config', ['--exists', name], { stdio: 'ignore' }).status === 0;
  }
  return pcDirs().some((d) => existsSync(path.join(d, `${name}.pc`)));
}

/** Each prerequisite, how to detect it, and the Debian package that provides it. */
const prerequisites = [
  { what: 'cmake', pkg: 'cmake', ok: () => commandExists('cmake') },
  {
    what: 'a C++ compiler (g++)',
    pkg: 'g++',
    ok: () =>
      process.env.CXX
        ? commandExists(process.env.CXX)
        : commandExists('c++') || commandExists('g++'),
  },
  { what: 'pkg-config', pkg: 'pkg-config', ok: () => commandExists('pkg-config') },
  {
    what: 'LuaJIT headers (pkg-config luajit)',
    pkg: 'libluajit2-5.1-dev',
    ok: () => pcExists('luajit'),
  },
  {
    what: 'OpenSSL headers (pkg-config openssl)',
    pkg: 'libssl-dev',
    ok: () => pcExists('openssl'),
  },
];

function missingPrerequisites() {
  return prerequisites.filter((p) => !p.ok());
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  return r.status === 0;
}

function main() {
  if (process.env.LAPPS_SKIP_NATIVE === '1') {
    console.log('lapps: LAPPS_SKIP_NATIVE=1, native addon not built');
    return 0;
  }

  let missing = missingPrerequisites();
  if (missing.length > 0) {
    const packages = [...new Set(missing.map((m) => m.pkg))];
    const canInstall = process.getuid?.() === 0 && commandExists('apt-get');
    console.error(`lapps: missing build prerequisites: ${missing.map((m) => m.what).join(', ')}`);
    if (!canInstall) {
      console.error('Install them with:');
      console.error(`  sudo ${[...APT_INSTALL, ...packages].join(' ')}`);
      if (!commandExists('apt-get')) {
        console.error('(on a system without apt-get, install the equivalent packages)');
      }
      console.error('then run npm install again.');
      return 1;
    }
    console.error(`lapps: installing ${packages.join(' ')} with apt-get`);
    if (
      !run('apt-get', ['update', '-qq']) ||
      !run(APT_INSTALL[0], [...APT_INSTALL.slice(1), ...packages])
    ) {
      console.error('lapps: apt-get failed; see its output above');
      return 1;
    }
    missing = missingPrerequisites();
    if (missing.length > 0) {
      console.error(`lapps: still missing after apt-get: ${missing.map((m) => m.what).join(', ')}`);
      return 1;
    }
  }

  // The addon only: npm test builds the test executables it runs.
  const status = buildNative('release', { tests: false });
  if (status !== 0) {
    console.error('lapps: native build failed (see above); rebuild with "npm run build:native"');
    return status;
  }
  console.log(`lapps: built ${path.relative(root, addonFile('release'))}`);
  return 0;
}

process.exit(main());
