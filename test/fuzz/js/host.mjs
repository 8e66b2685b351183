#!/usr/bin/env node
/**
 * The Node side of the libFuzzer bridge (test/fuzz/js-bridge.cc): runs each input through a
 * JavaScript fuzz target (./<target>.mjs) and answers with the coverage it produced.
 *
 *   node test/fuzz/js/host.mjs <target> <counters>     (started by lapps_fuzz_<target>)
 *
 * Requests arrive on fd 3 and replies leave on fd 4 (the protocol is in js-bridge.cc);
 * stdout and stderr stay free for whatever the code under test prints.
 *
 * Coverage is V8's precise block coverage (node:inspector, Profiler.takePreciseCoverage
 * with callCount and detailed), taken and reset after every input. Its callback runs
 * synchronously inside session.post, so the loop stays synchronous. V8 reports a block
 * range only where its count differs from the enclosing range's, so a block's count is that
 * of the innermost reported range containing it: the host remembers every block range it has
 * seen reported, per function, and reports each with that count. Otherwise an input taking a
 * branch that others skipped would show nothing new. Each (script, block range) is hashed
 * (FNV-1a) to a counter index; the bridge adds the counts (saturating at 255) and libFuzzer
 * buckets them as it does its own counters. Only the scripts the target names count.
 */
import { Session } from 'node:inspector';
import { readSync, writeSync } from 'node:fs';

import { ensureDist } from './dist.mjs';

const REQUESTS = 3;
const REPLIES = 4;
const Status = { ready: 0, coverage: 1, finding: 2 };

const [targetName, countersArg] = process.argv.slice(2);
const counters = Number(countersArg);
if (!targetName || !/^[a-z0-9-]+$/.test(targetName) || !(counters > 0)) {
  console.error('usage: host.mjs <target> <counters> (started by the lapps_fuzz_<target> bridge)');
  process.exit(2);
}

const session = new Session();
session.connect();
/** session.post, relying on its callback running before post returns (it does in-process). */
function post(method, params) {
  let done = false;
  let error;
  let result;
  session.post(method, params, (err, res) => {
    done = true;
    error = err;
    result = res;
  });
  if (!done) throw new Error(`inspector: ${method} did not answer synchronously`);
  if (error) throw error;
  return result;
}

// Coverage first: V8 gives block counters only to functions compiled while it is on, so the
// code under test is loaded after this.
post('Profiler.enable');
post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
ensureDist();
const target = await import(`./${targetName}.mjs`);
const instance = target.createTarget();
process.on('exit', () => instance.close());
// One-time work (module initialisation, ajv compiling the schema) is not the input's
// coverage: run the warm-up inputs, then drop what they covered.
for (const input of target.warmUp ?? []) {
  try {
    instance.run(Buffer.from(input, 'latin1'));
  } catch (err) {
    console.error(`warm-up input ${JSON.stringify(input)} failed:`, err);
    process.exit(1);
  }
}
post('Profiler.takePreciseCoverage');

/** FNV-1a, 32 bits. */
function hash(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * Per script key, per function start offset: the block ranges seen so far ("start:end"), each
 * with its counter index.
 * @type {Map<string, Map<number, {seen: Set<string>, list: {start: number, end: number, index: number}[]}>>}
 */
const blocks = new Map();

/** The stable key of a script to count, or undefined; eval'd code has no URL. */
function scriptKey(script) {
  const url = script.url === '' ? `eval:${script.scriptId}` : script.url;
  return target.countsScript(script.url) ? url : undefined;
}

/** Counter index -> count for the coverage taken since the last call. */
function takeCoverage() {
  const hits = new Map();
  for (const script of post('Profiler.takePreciseCoverage').result) {
    const key = scriptKey(script);
    if (key === undefined) continue;
    let functions = blocks.get(key);
    if (!functions) blocks.set(key, (functions = new Map()));
    for (const fn of script.functions) {
      const ranges = fn.ranges;
      const whole = ranges[0];
      if (ranges.length === 1 && whole.count === 0) continue;
      let known = functions.get(whole.startOffset);
      if (!known) {
        known = { seen: new Set(), list: [] };
        functions.set(whole.startOffset, known);
      }
      for (const r of ranges) {
        const id = `${r.startOffset}:${r.endOffset}`;
        if (!known.seen.has(id)) {
          known.seen.add(id);
          const index = hash(`${key}:${id}`) % counters;
          known.list.push({ start: r.startOffset, end: r.endOffset, index });
        }
      }
      for (const b of known.list) {
        // The innermost reported range containing the block gives its count.
        let count = 0;
        let size = Infinity;
        for (const r of ranges) {
          if (r.startOffset <= b.start && b.end <= r.endOffset) {
            const s = r.endOffset - r.startOffset;
            if (s < size) {
              size = s;
              count = r.count;
            }
          }
        }
        if (count > 0) hits.set(b.index, (hits.get(b.index) ?? 0) + count);
      }
    }
  }
  return hits;
}

function reply(status, body = Buffer.alloc(0)) {
  const header = Buffer.alloc(8);
  header.writeUInt32LE(status, 0);
  header.writeUInt32LE(body.length, 4);
  const out = Buffer.concat([header, body]);
  for (let off = 0; off < out.length;) off += writeSync(REPLIES, out, off);
}

/** Reads exactly `size` bytes; undefined at end of input (the bridge is done). */
function read(size) {
  const buf = Buffer.alloc(size);
  for (let off = 0; off < size;) {
    const n = readSync(REQUESTS, buf, off, size - off, null);
    if (n === 0) return undefined;
    off += n;
  }
  return buf;
}

reply(Status.ready);
for (;;) {
  const header = read(4);
  if (!header) break;
  const input = read(header.readUInt32LE(0));
  if (!input) break;
  try {
    instance.run(input);
  } catch (err) {
    reply(
      Status.finding,
      Buffer.from(err instanceof Error ? (err.stack ?? String(err)) : String(err)),
    );
    continue;
  }
  const hits = takeCoverage();
  const body = Buffer.alloc(hits.size * 8);
  let off = 0;
  for (const [index, count] of hits) {
    body.writeUInt32LE(index, off);
    body.writeUInt32LE(Math.min(count, 0xffffffff), off + 4);
    off += 8;
  }
  reply(Status.coverage, body);
}
process.exit(0);
