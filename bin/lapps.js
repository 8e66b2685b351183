#!/usr/bin/env node
// The CLI is TypeScript compiled into dist/ by `npm install` (the prepare script).
let cli;
try {
  cli = await import('../dist/lib/cli.js');
} catch (err) {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('cli.js')) {
    console.error('lapps: dist/lib/cli.js is missing: run "npm run build" (or npm install)');
    process.exit(1);
  }
  throw err;
}
await cli.main(process.argv.slice(2));
