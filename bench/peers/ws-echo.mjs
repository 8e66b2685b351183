// `ws` (npm) echo server: a benchmark peer. Echoes every message with its own opcode.
// No permessage-deflate. Whether ws uses the native `bufferutil` masking/unmasking is
// decided by ws itself from the environment: WS_NO_BUFFER_UTIL=1 turns it off.
//
// Usage: node bench/peers/ws-echo.mjs [port]   (argv[2], else $PORT, else 0 = any free port)
// Prints "listening <port>" once accepting; exits 0 on SIGTERM / SIGINT.
import { WebSocketServer } from 'ws';

const arg = process.argv[2] ?? process.env.PORT ?? '0';
const port = Number(arg);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`ws-echo: bad port '${arg}'`);
  process.exit(2);
}

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  backlog: 4096,
  perMessageDeflate: false,
  maxPayload: 64 * 1024 * 1024,
});

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {}); // a client's protocol error closes it; the server goes on
});

wss.on('error', (err) => {
  console.error(`ws-echo: ${err.message}`);
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
