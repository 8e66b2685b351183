/** Where the lapps package is installed, for files it ships (services, package.json, the addon). */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root: lib/ when run from source, dist/lib/ when compiled. */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('lapps: cannot find the package root');
    dir = up;
  }
  return dir;
}
