// The chat page: lapps/client from /lapps-client.js (served by lapps's static option).
// Query parameters: ws (the chat service URL), room, nick (signs in at once), token (a token
// from elsewhere, e.g. `lapps token`: used instead of asking /token).
//
// Signing in: POST /token {"sub": nick} on this server (the static server's dev_tokens
// issuer) gives a short-lived token; the page connects to ws?token=... and asks `whoami`.
// A browser hides why a handshake was refused, so the service lets a page with a bad token
// in, answers its first request with error -32001 and the reason, and closes with 4401:
// the page shows that reason.
import { connect } from '/lapps-client.js';

const NOT_SIGNED_IN = -32001;
const query = new URLSearchParams(location.search);
const url = query.get('ws') ?? `ws://${location.hostname || '127.0.0.1'}:5083/chat`;
const $ = (id) => document.getElementById(id);
if (query.get('room')) $('room').value = query.get('room');
if (query.get('nick')) $('nick').value = query.get('nick');

let client;
let room;

function show(text, event = false) {
  const p = document.createElement('p');
  p.textContent = text;
  if (event) p.className = 'event';
  $('log').append(p);
  $('log').scrollTop = $('log').scrollHeight;
}

function setSignedIn(nick) {
  $('join').disabled = !nick;
  $('signin').querySelector('button').disabled = Boolean(nick);
  $('nick').disabled = Boolean(nick);
  if (nick) document.body.dataset.user = nick;
  else delete document.body.dataset.user;
  if (!nick) {
    $('text').disabled = true;
    $('say').querySelector('button').disabled = true;
    room = undefined;
  }
}

/** The service said no (or stopped saying yes): show why and stop the client. */
function refused(why) {
  $('refused').textContent = `Not signed in: ${why}`;
  document.body.dataset.refused = why;
  setSignedIn(undefined);
  const c = client;
  client = undefined;
  void c?.close();
  $('state').textContent = 'signed out';
}

/** A token for `nick` from the development issuer, or throws an Error saying why not. */
async function fetchToken(nick) {
  let res;
  try {
    res = await fetch('/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ sub: nick }),
    });
  } catch (err) {
    throw new Error(`the token issuer cannot be reached (${err.message})`);
  }
  const body = await res.json().catch(() => ({}));
  if (res.status === 405 && !body.error) {
    throw new Error('this server issues no tokens (static.dev_tokens is not configured)');
  }
  if (!res.ok) throw new Error(`the token issuer said ${res.status}: ${body.error ?? res.statusText}`);
  return body.token;
}

async function signIn(token) {
  $('refused').textContent = '';
  delete document.body.dataset.refused;
  $('state').textContent = 'signing in';
  try {
    token ??= await fetchToken($('nick').value.trim());
  } catch (err) {
    refused(err.message);
    return;
  }
  let c;
  try {
    c = await connect(`${url}?token=${encodeURIComponent(token)}`, {
      onStateChange: (state) => {
        // Only once signed in (whoami answered): until then the sign-in says how it goes.
        if (c !== undefined && c === client && document.body.dataset.user) {
          $('state').textContent = state;
        }
      },
      onError: (err) => {
        // A resent join after a reconnect with a token that has expired meanwhile.
        if (err.cause?.code === NOT_SIGNED_IN) refused(err.cause.message);
        else show(`error: ${err.message}`, true);
      },
    });
  } catch (err) {
    refused(`cannot connect: ${err.closeReason ?? err.message}`);
    return;
  }
  client = c;
  let nick;
  try {
    [nick] = await c.request('whoami');
  } catch (err) {
    refused(err.code === NOT_SIGNED_IN ? err.message : `cannot sign in: ${err.message}`);
    return;
  }
  $('state').textContent = 'open';
  $('nick').value = nick;
  setSignedIn(nick);
  // Server time: channel 1, pushed every second by the chat_time service.
  c.subscribe(
    1,
    ([ms]) => {
      $('time').textContent = new Date(Number(ms)).toLocaleTimeString();
    },
    { method: 'time' },
  );
}

$('signin').addEventListener('submit', (e) => {
  e.preventDefault();
  void signIn();
});

$('join').addEventListener('click', async () => {
  const name = $('room').value.trim();
  const c = client;
  if (!c) return;
  try {
    const [cid] = await c.request('join', [name]);
    room = name;
    // Joined: the request is sent again after a reconnect, so the room follows us.
    c.subscribe(
      cid,
      (event) => {
        const [kind, who, text] = event;
        if (kind === 'say') show(`${who}: ${text}`);
        else show(`${who} ${kind === 'join' ? 'joined' : 'left'}`, true);
      },
      { method: 'join', params: [name] },
    );
    show(`you joined ${name}`, true);
    $('text').disabled = false;
    $('say').querySelector('button').disabled = false;
    document.body.dataset.joined = name;
  } catch (err) {
    show(`cannot join: ${err.message}`, true);
  }
});

$('say').addEventListener('submit', async (e) => {
  e.preventDefault();
  const text = $('text').value;
  if (!text || !room || !client) return;
  $('text').value = '';
  try {
    await client.request('say', [room, text]);
  } catch (err) {
    show(`not sent: ${err.message}`, true);
  }
});

if (query.get('token')) void signIn(query.get('token'));
else if (query.get('nick')) void signIn();
