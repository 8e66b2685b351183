#!/usr/bin/env node
/**
 * Builds the browser bundle of `lapps/client`: dist/browser/lapps-client.js, one ES module,
 * minified, with a source map. cbor-x is bundled; `ws` is replaced by an empty module
 * (browsers have WebSocket; elsewhere pass options.WebSocket).
 *
 *   node scripts/bundle-client.mjs [--outfile <path>]
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const defaultOutfile = path.join(root, 'dist', 'browser', 'lapps-client.js');

/** Resolves `ws` to a module without a WebSocket, so none of `ws` (or Node's APIs) is pulled in. */
const noWs = {
  name: 'no-ws',
  setup(b) {
    b.onResolve({ filter: /^ws$/ }, () => ({ path: 'ws', namespace: 'no-ws' }));
    b.onLoad({ filter: /.*/, namespace: 'no-ws' }, () => ({
      contents: 'export default undefined;\nexport const WebSocket = undefined;\n',
      loader: 'js',
    }));
  },
};

/** Writes the bundle (and `<outfile>.map`); resolves with esbuild's result. */
export function bundleClient(outfile = defaultOutfile) {
  return build({
    entryPoints: [path.join(root, 'lib', 'client', 'index.ts')],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    sourcemap: true,
    plugins: [noWs],
    logLevel: 'warning',
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const args = process.argv.slice(2);
  let outfile = defaultOutfile;
  if (args[0] === '--outfile' && args[1]) outfile = path.resolve(args[1]);
  else if (args.length > 0) {
    console.error('usage: node scripts/bundle-client.mjs [--outfile <path>]');
    process.exit(2);
  }
  try {
    const result = await bundleClient(outfile);
    if (result.errors.length > 0) process.exit(1);
    console.log(`client bundle: ${path.relative(process.cwd(), outfile) || outfile}`);
  } catch {
    // esbuild has printed the errors (logLevel warning).
    process.exit(1);
  }
}
