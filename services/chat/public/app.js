// The chat page: lapps/client from /lapps-client.js (served by lapps's static option).
// Query parameters: ws (the chat service URL), room, nick.
import { connect } from '/lapps-client.js';

const query = new URLSearchParams(location.search);
const url = query.get('ws') ?? `ws://${location.hostname || '127.0.0.1'}:5083/chat`;
const $ = (id) => document.getElementById(id);
if (query.get('room')) $('room').value = query.get('room');
if (query.get('nick')) $('nick').value = query.get('nick');

function show(text, event = false) {
  const p = document.createElement('p');
  p.textContent = text;
  if (event) p.className = 'event';
  $('log').append(p);
  $('log').scrollTop = $('log').scrollHeight;
}

const client = await connect(url, {
  onStateChange: (state) => ($('state').textContent = state),
  onError: (err) => show(`error: ${err.message}`, true),
});
$('state').textContent = client.state;

// Server time: channel 1, pushed every second by the chat_time service.
client.subscribe(
  1,
  ([ms]) => {
    $('time').textContent = new Date(Number(ms)).toLocaleTimeString();
  },
  { method: 'time' },
);

let room;
$('join').addEventListener('click', async () => {
  const name = $('room').value.trim();
  const nick = $('nick').value.trim();
  try {
    const [cid] = await client.request('join', [name, nick]);
    room = name;
    // Joined: the request is sent again after a reconnect, so the room follows us.
    client.subscribe(
      cid,
      (event) => {
        const [kind, who, text] = event;
        if (kind === 'say') show(`${who}: ${text}`);
        else show(`${who} ${kind === 'join' ? 'joined' : 'left'}`, true);
      },
      { method: 'join', params: [name, nick] },
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
  if (!text || !room) return;
  $('text').value = '';
  try {
    await client.request('say', [room, text]);
  } catch (err) {
    show(`not sent: ${err.message}`, true);
  }
});
