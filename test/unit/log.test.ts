import { Writable } from 'node:stream';

import t from 'tap';

import { createLogger } from '../../lib/log.js';
import type { LogConfig } from '../../lib/config/types.js';

/** A logger writing into an array of lines. */
function capture(config: Pick<LogConfig, 'level' | 'json'>): {
  lines: string[];
  log: ReturnType<typeof createLogger>;
} {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { lines, log: createLogger(config, stream) };
}

const TIME = String.raw`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z`;

t.test('text lines: time, padded level, source in brackets, fields as key=value', async (t) => {
  const { lines, log } = capture({ level: 'debug', json: false });
  log.info('service echo started', { source: 'worker 0', port: 5083, name: 'a b' });
  log.error('boom');
  log.warn('w', { empty: '', obj: { a: 1 }, err: new Error('bad thing'), skipped: undefined });
  t.equal(lines.length, 3);
  t.match(
    lines[0],
    new RegExp(`^${TIME} INFO  \\[worker 0\\] service echo started port=5083 name="a b"\\n$`),
  );
  t.match(lines[1], new RegExp(`^${TIME} ERROR boom\\n$`));
  t.match(lines[2], new RegExp(`^${TIME} WARN  w empty="" obj=\\{"a":1\\} err="bad thing"\\n$`));
});

t.test('text: continuation lines of a multi-line message are indented', async (t) => {
  const { lines, log } = capture({ level: 'info', json: false });
  log.error('lua error\nstack traceback:\n\t[C]: in ?', { source: 'service echo#0' });
  t.equal(lines.length, 1);
  const parts = lines[0]!.split('\n');
  t.equal(parts.length, 4, 'three lines plus the final newline');
  t.match(parts[0], /\[service echo#0\] lua error$/);
  t.equal(parts[1], '    stack traceback:');
  t.equal(parts[2], '    \t[C]: in ?');
});

t.test('json lines: one object per line with time, level, source, msg and fields', async (t) => {
  const { lines, log } = capture({ level: 'info', json: true });
  log.info('hello\nworld', { source: 'cli', n: 1, msg: 'clash', err: new Error('e') });
  t.equal(lines.length, 1);
  t.match(lines[0], /^\{.*\}\n$/);
  const entry = JSON.parse(lines[0]!) as Record<string, unknown>;
  t.match(entry.time, new RegExp(`^${TIME}$`));
  t.same(
    { ...entry, time: undefined },
    {
      time: undefined,
      level: 'info',
      source: 'cli',
      msg: 'hello\nworld',
      n: 1,
      'field.msg': 'clash',
      err: 'e',
    },
  );
  t.same(Object.keys(entry).slice(0, 4), ['time', 'level', 'source', 'msg'], 'fixed keys first');
});

t.test('levels filter: only entries at or above the configured level', async (t) => {
  const expected: Record<LogConfig['level'], string[]> = {
    error: ['error'],
    warn: ['error', 'warn'],
    info: ['error', 'warn', 'info'],
    debug: ['error', 'warn', 'info', 'debug'],
  };
  for (const level of ['error', 'warn', 'info', 'debug'] as const) {
    const { lines, log } = capture({ level, json: true });
    log.debug('debug');
    log.info('info');
    log.warn('warn');
    log.error('error');
    const got = lines.map((l) => (JSON.parse(l) as { level: string }).level).sort();
    t.same(got, [...expected[level]].sort(), `level ${level}`);
  }
});

t.test('unserialisable fields do not break logging', async (t) => {
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  for (const json of [false, true]) {
    const { lines, log } = capture({ level: 'info', json });
    log.info('still logged', { circular, big: 10n });
    t.equal(lines.length, 1);
    t.match(lines[0], /still logged/);
  }
});

t.test('writes to stderr by default', async (t) => {
  const log = createLogger({ level: 'error', json: false });
  let written = '';
  const original = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    written += chunk.toString();
    return true;
  }) as typeof process.stderr.write;
  try {
    log.error('to stderr');
  } finally {
    process.stderr.write = original;
  }
  t.match(written, /ERROR to stderr\n$/);
});

t.test(
  'a stream that does not keep up: entries are dropped, counted, then reported once',
  async (t) => {
    const written: string[] = [];
    const pending: (() => void)[] = [];
    // A stream whose writes complete only when the test says so: a pipe nobody reads.
    const stream = new Writable({
      highWaterMark: 256,
      write(chunk: Buffer, _enc, done) {
        written.push(chunk.toString());
        pending.push(done);
      },
    });
    const log = createLogger({ level: 'info', json: false }, stream, 1024);
    for (let i = 0; i < 100; ++i) log.info(`line ${i} ${'x'.repeat(90)}`);
    t.ok(stream.writableLength < 1024 + 200, `bounded: ${stream.writableLength} bytes buffered`);
    const kept = 100 - log.overflowed;
    t.ok(log.overflowed > 80, `${log.overflowed} dropped`);
    log.dropped('warn', 5); // the native queue lost 5 warnings meanwhile
    log.dropped('debug', 7); // below the level: never reported
    log.error('also dropped while stalled');
    t.equal(log.overflowed, 101 - kept);

    // The reader comes back: everything buffered is written, then one line with the count.
    while (pending.length > 0) {
      pending.shift()!();
      await new Promise((r) => setImmediate(r));
    }
    const lines = written.join('').split('\n').filter(Boolean);
    t.equal(lines.length, kept + 1);
    t.match(lines[kept - 1], new RegExp(`line ${kept - 1} x`), 'the kept lines in order');
    t.match(
      lines[kept],
      new RegExp(
        `WARN  \\[log\\] ${log.overflowed + 5} log lines dropped \\(log output not keeping up\\)$`,
      ),
    );
    log.info('writing again');
    while (pending.length > 0) pending.shift()!();
    t.match(written.at(-1), /INFO  writing again\n$/);
  },
);

t.test('drops reported while the stream keeps up are logged at once', async (t) => {
  const { lines, log } = capture({ level: 'warn', json: true });
  log.dropped('info', 3); // below the level
  t.equal(lines.length, 0);
  log.dropped('error', 1);
  t.equal(lines.length, 1);
  t.match(JSON.parse(lines[0]!), {
    level: 'warn',
    source: 'log',
    msg: '1 log line dropped (log output not keeping up)',
  });
  t.equal(log.overflowed, 0, 'only what the logger itself dropped counts as overflowed');
});
