// `ws` (npm) fan-out server: a benchmark peer (see README.md, "Fan-out peers"). One
// channel. Text "sub" subscribes the connection (answered with text "ok"); any binary
// message is sent to every subscriber, with the loop over clients that ws's README shows
// for broadcasting. Its built-in publisher: text "go <n> <size>" sends n messages of
// <size> bytes (sequence number and process.hrtime ns, which is CLOCK_MONOTONIC, then
// filler) to every subscriber; "rate <r> <size>" does so r times per second on a timer
// until that connection closes. WS_NO_BUFFER_UTIL=1 turns off ws's native masking.
//
// Usage: node bench/peers/ws-fanout.mjs [port]   (argv[2], else $PORT, else 0)
// Prints "listening <port>" once accepting; exits 0 on SIGTERM / SIGINT.
import { WebSocketServer } from 'ws';

const arg = process.argv[2] ?? process.env.PORT ?? '0';
const port = Number(arg);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`ws-fanout: bad port '${arg}'`);
  process.exit(2);
}

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  backlog: 4096,
  perMessageDeflate: false,
  maxPayload: 64 * 1024 * 1024,
});

const subscribers = new Set();
let seq = 0n;

function broadcast(data) {
  for (const client of subscribers) client.send(data, { binary: true });
}

/** One message of the built-in publisher: [seq u64 LE, ns u64 LE, 'x'...]. */
function message(size) {
  const b = Buffer.alloc(size, 'x');
  b.writeBigUInt64LE(++seq, 0);
  b.writeBigUInt64LE(process.hrtime.bigint(), 8);
  return b;
}

/** "rate r size": the messages due since it started, on a 1 ms timer (Node's finest). */
function startRate(ws, rate, size) {
  const t0 = process.hrtime.bigint();
  let sent = 0;
  const timer = setInterval(() => {
    const due = Math.floor((Number(process.hrtime.bigint() - t0) / 1e9) * rate);
    for (; sent < due; ++sent) broadcast(message(size));
  }, 1);
  ws.once('close', () => clearInterval(timer));
}

function command(ws, text) {
  if (text === 'sub') {
    subscribers.add(ws);
    ws.once('close', () => subscribers.delete(ws));
    ws.send('ok');
    return;
  }
  const [name, a, b] = text.split(' ');
  const n = Number(a);
  const size = Number(b);
  if (!(n > 0) || !(size >= 16)) return;
  if (name === 'go') for (let i = 0; i < n; ++i) broadcast(message(size));
  else if (name === 'rate') startRate(ws, n, size);
}

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    if (isBinary) broadcast(data);
    else command(ws, data.toString());
  });
  ws.on('error', () => {}); // a client's protocol error closes it; the server goes on
});

wss.on('error', (err) => {
  console.error(`ws-fanout: ${err.message}`);
  process.exit(1);
});

wss.on('listening', () => {
  process.stdout.write(`listening ${wss.address().port}\n`);
});

function stop() {
  for (const ws of wss.clients) ws.terminate();
  wss.close(() => process.exit(0));
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
