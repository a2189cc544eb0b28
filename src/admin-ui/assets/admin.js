// roomcast admin UI: plain browser JavaScript, no framework, no build step. It talks only to the
// HTTP API mounted under the admin path (same origin; the session cookie authenticates it).
// Every value from the server is written with textContent: nothing it sends is parsed as HTML.

const meta = document.querySelector('meta[name="roomcast-admin"]');
const API = meta?.dataset.api ?? '/admin/api';
const REFRESH = Math.max(500, Number(meta?.dataset.refresh) || 2000);
/** Longest wait between two refreshes while the API keeps failing. */
const MAX_BACKOFF = 30_000;
/** Members shown at first, and added by "More members" (up to MEMBERS_MAX); history entries shown. */
const MEMBERS_PAGE = 50;
const MEMBERS_MAX = 1000;
const HISTORY_SHOWN = 20;
const TOP_ROOMS = 20;

const $ = (selector) => document.querySelector(selector);

// ------------------------------------------------------------------ API calls

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function call(method, path, body) {
  const headers = { accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (method !== 'GET') {
    headers['x-roomcast-admin'] = '1';
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
  }
  const response = await fetch(`${API}${path}`, init);
  let answer;
  try {
    answer = await response.json();
  } catch {
    answer = undefined;
  }
  if (response.status === 401) {
    // The session ran out (or the key was rotated): back to the sign-in form.
    window.location.reload();
  }
  if (!response.ok) {
    const error = answer?.error ?? {};
    throw new ApiError(
      response.status,
      error.code ?? `HTTP_${response.status}`,
      error.message ?? response.statusText,
    );
  }
  return answer;
}

const q = encodeURIComponent;

/** The routes of the HTTP API the page uses (docs/http-api.md). */
const api = {
  instances: () => call('GET', '/instances'),
  topRooms: (n) => call('GET', `/rooms/top?limit=${n}`),
  presence: (room, limit) => call('GET', `/presence?room=${q(room)}&limit=${limit}`),
  presenceStats: (room) => call('GET', `/presence/stats?room=${q(room)}`),
  history: (room) => call('GET', `/history?room=${q(room)}&limit=${HISTORY_SHOWN}&reverse=true`),
  removeHistory: (room) => call('POST', '/history/remove', { room }),
  publish: (room, event, data) => call('POST', '/publish/room', { room, event, data }),
  connections: (target) =>
    call('GET', `/connections?${target.kind === 'user' ? 'userId' : 'clientId'}=${q(target.id)}`),
  disconnect: (target) =>
    call('POST', '/disconnect', {
      ...target,
      reason: 'Disconnected by an operator',
      ...($('#disconnect-code').value === 'no-reconnect' ? { reconnect: false } : {}),
    }),
  join: (target, room) => call('POST', '/join', { ...target, rooms: [room] }),
  leave: (target, room) => call('POST', '/leave', { ...target, rooms: [room] }),
};

// ------------------------------------------------------------------ helpers

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text === undefined || text === null ? '' : String(text);
  if (className) td.className = className;
  return td;
}

function button(label, onClick, className = 'link') {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  b.className = className;
  b.addEventListener('click', onClick);
  return b;
}

function emptyRow(tbody, columns, text) {
  const tr = document.createElement('tr');
  tr.className = 'empty';
  const td = cell(text);
  td.colSpan = columns;
  tr.append(td);
  tbody.replaceChildren(tr);
}

const number = new Intl.NumberFormat();
const rate = (value) => (typeof value === 'number' ? value.toFixed(value < 10 ? 1 : 0) : '');

function ago(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

/** A short, safe text of any JSON value (never rendered as HTML). */
function preview(value, max = 200) {
  let text;
  try {
    text = typeof value === 'string' ? value : JSON.stringify(value);
  } catch {
    text = String(value);
  }
  if (text === undefined) return '';
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

function setStatus(state, text) {
  const status = $('#status');
  status.dataset.state = state;
  status.textContent = text;
}

/**
 * Calls `refresh` now and again every `REFRESH` ms after it settles (never two at once), slower
 * while it fails, paused while the tab is hidden. Returns a function that stops it.
 */
function poll(refresh, every = REFRESH) {
  let timer;
  let running = false;
  let again = false;
  let stopped = false;
  let delay = every;
  const run = async () => {
    timer = undefined;
    if (stopped) return;
    if (running) {
      again = true; // asked for while a refresh is on its way: one more right after it
      return;
    }
    if (document.hidden) {
      timer = setTimeout(run, every);
      return;
    }
    running = true;
    try {
      await refresh();
      delay = every;
    } catch (error) {
      delay = Math.min(delay * 2, MAX_BACKOFF);
      setStatus('error', `${error.message} (retrying in ${Math.round(delay / 1000)} s)`);
    }
    running = false;
    if (stopped) return;
    const next = again ? 0 : delay;
    again = false;
    timer = setTimeout(run, next);
  };
  run();
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
    now() {
      if (timer) clearTimeout(timer);
      run();
    },
  };
}

// ------------------------------------------------------------------ confirm + action log

const dialog = $('#confirm');

/** Asks the operator to confirm `text`; resolves true only on "Confirm". */
function confirmAction(text) {
  $('#confirm-text').textContent = text;
  dialog.returnValue = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.showModal();
  });
}

function logAction(text, ok, detail) {
  const li = document.createElement('li');
  li.className = ok ? 'done' : 'failed';
  li.textContent = `${new Date().toLocaleTimeString()} ${text}: ${detail}`;
  $('#action-log').prepend(li);
  while ($('#action-log').children.length > 50) $('#action-log').lastElementChild.remove();
}

/** Confirms, runs and logs one action; returns its answer (undefined when cancelled or failed). */
async function act(description, run) {
  if (!(await confirmAction(description))) return undefined;
  try {
    const answer = await run();
    logAction(description, true, answer === undefined ? 'done' : preview(answer, 120));
    return answer ?? true;
  } catch (error) {
    logAction(description, false, `${error.code ?? 'ERROR'}: ${error.message}`);
    return undefined;
  }
}

// ------------------------------------------------------------------ fleet

let lastFleetAt = 0;

function renderInstances(instances, totals) {
  const tbody = $('#instances tbody');
  const now = Date.now();
  if (instances.length === 0) {
    emptyRow(tbody, 10, 'No live instance announces itself (is `fleet` on?)');
  } else {
    tbody.replaceChildren(
      ...instances.map((instance) => {
        const tr = document.createElement('tr');
        tr.dataset.instance = instance.id;
        if (instance.draining) tr.className = 'gone';
        tr.append(
          cell(instance.id, 'mono'),
          cell(instance.identifier),
          cell(instance.version),
          cell(ago(now - instance.startedAt)),
          cell(number.format(instance.connections), 'num'),
          cell(number.format(instance.users), 'num'),
          cell(number.format(instance.rooms), 'num'),
          cell(rate(instance.rates?.inboundFrames), 'num'),
          cell(rate((instance.rates?.publishes ?? 0) + (instance.rates?.socketWrites ?? 0)), 'num'),
          cell(`${ago(now - instance.updatedAt)} ago`),
        );
        tr.children[4].dataset.field = 'connections';
        return tr;
      }),
    );
  }
  $('#fleet-summary').textContent =
    `${instances.length} instance${instances.length === 1 ? '' : 's'} · ` +
    `${number.format(totals.connections)} connections · ${number.format(totals.authenticated)} authenticated`;
  $('#fleet-summary').dataset.connections = String(totals.connections);
}

function renderRooms(rooms) {
  const tbody = $('#rooms tbody');
  if (rooms.length === 0) return emptyRow(tbody, 3, 'No room with members');
  tbody.replaceChildren(
    ...rooms.map((entry) => {
      const tr = document.createElement('tr');
      tr.dataset.room = entry.room;
      const open = document.createElement('td');
      open.append(button('Open', () => openRoom(entry.room)));
      tr.append(cell(entry.room, 'mono'), cell(number.format(entry.members), 'num'), open);
      return tr;
    }),
  );
  $('#rooms-summary').textContent = `top ${rooms.length}`;
}

async function refreshFleet() {
  const [fleet, top] = await Promise.all([api.instances(), api.topRooms(TOP_ROOMS)]);
  renderInstances(fleet.instances ?? [], fleet.totals ?? { connections: 0, authenticated: 0 });
  renderRooms(top.rooms ?? []);
  lastFleetAt = Date.now();
  setStatus('live', `live · updated ${new Date(lastFleetAt).toLocaleTimeString()}`);
}

// ------------------------------------------------------------------ room

let roomPoll;
let currentRoom;
let membersShown = MEMBERS_PAGE;

function renderMembers(members) {
  const tbody = $('#members tbody');
  const rows = members.map((member) => {
    const tr = document.createElement('tr');
    tr.dataset.client = member.clientId;
    const actions = document.createElement('td');
    actions.append(button('Connections', () => lookUp('client', member.clientId)));
    tr.append(
      cell(member.clientId, 'mono'),
      cell(member.userId),
      cell(preview(member.info, 80), 'data'),
      actions,
    );
    return tr;
  });
  if (rows.length === 0) emptyRow(tbody, 4, 'No member (or the room keeps no presence)');
  else tbody.replaceChildren(...rows);
}

function renderHistory(page) {
  const tbody = $('#history tbody');
  const publications = page?.publications ?? [];
  if (publications.length === 0) return emptyRow(tbody, 3, 'No retained publication');
  tbody.replaceChildren(
    ...publications.map((publication) => {
      const tr = document.createElement('tr');
      tr.append(
        cell(publication.offset, 'num'),
        cell(publication.event),
        cell(preview(publication.data), 'data'),
      );
      return tr;
    }),
  );
}

async function refreshRoom() {
  const room = currentRoom;
  const [stats, members, history] = await Promise.all([
    api.presenceStats(room).catch((error) => ({ error })),
    api.presence(room, membersShown).catch((error) => ({ error })),
    api.history(room).catch((error) => ({ error })),
  ]);
  if (room !== currentRoom) return;
  const parts = [];
  if (stats.error) parts.push(`presence: ${stats.error.code}`);
  else
    parts.push(`${number.format(stats.clients)} connections · ${number.format(stats.users)} users present`);
  if (history.error) parts.push(`history: ${history.error.code}`);
  else if (history.offset !== undefined)
    parts.push(`history at offset ${history.offset} (epoch ${history.epoch})`);
  $('#room-stats').textContent = parts.join(' · ');
  if (!members.error) {
    const list = members.members ?? [];
    renderMembers(list);
    $('#members-shown').textContent =
      members.total > list.length ? `${list.length} of ${number.format(members.total)} shown` : '';
    $('#members-more').hidden = !(members.total > list.length && membersShown < MEMBERS_MAX);
  }
  renderHistory(history.error ? undefined : history);
}

function openRoom(room) {
  currentRoom = room;
  membersShown = MEMBERS_PAGE;
  $('#room-name').value = room;
  $('#room-title').textContent = `Room ${room}`;
  $('#room-detail').hidden = false;
  roomPoll?.stop();
  roomPoll = poll(refreshRoom, REFRESH * 2);
}

$('#room-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const room = $('#room-name').value.trim();
  if (room) openRoom(room);
});

$('#members-more').addEventListener('click', () => {
  membersShown = Math.min(membersShown + MEMBERS_PAGE, MEMBERS_MAX);
  roomPoll?.now();
});

$('#publish-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  if (!currentRoom) return;
  const name = $('#publish-event').value.trim();
  let data;
  const raw = $('#publish-data').value.trim();
  try {
    data = raw === '' ? undefined : JSON.parse(raw);
  } catch {
    logAction(`publish to ${currentRoom}`, false, 'the data is not valid JSON');
    return;
  }
  await act(`Publish "${name}" to room ${currentRoom}`, () => api.publish(currentRoom, name, data));
  roomPoll?.now();
});

$('#remove-history').addEventListener('click', async () => {
  if (!currentRoom) return;
  await act(`Remove the history of room ${currentRoom}`, () => api.removeHistory(currentRoom));
  roomPoll?.now();
});

// ------------------------------------------------------------------ connections

let lookupTarget;

function targetOf(target) {
  return target.kind === 'user' ? { userId: target.id } : { clientId: target.id };
}

function describeTarget(target) {
  return target.kind === 'user' ? `user ${target.id}` : `client ${target.id}`;
}

function renderConnections(connections) {
  const tbody = $('#connections tbody');
  $('#connections-summary').textContent =
    `${describeTarget(lookupTarget)}: ${connections.length} connection${connections.length === 1 ? '' : 's'}`;
  if (connections.length === 0) return emptyRow(tbody, 7, 'No connection');
  tbody.replaceChildren(
    ...connections.map((connection) => {
      const tr = document.createElement('tr');
      tr.dataset.client = connection.clientId;
      const actions = document.createElement('td');
      actions.append(
        button(
          'Disconnect',
          async () => {
            await act(`Disconnect client ${connection.clientId}`, () =>
              api.disconnect({ clientId: connection.clientId }),
            );
            connectionsPoll?.now();
          },
          'danger',
        ),
      );
      tr.append(
        cell(connection.clientId, 'mono'),
        cell(connection.userId),
        cell(connection.instanceId ?? connection.serverId, 'mono'),
        cell((connection.rooms ?? []).join(', '), 'data'),
        cell(connection.encrypted ? 'yes' : 'no'),
        cell(connection.connectedAt ? `${ago(Date.now() - connection.connectedAt)} ago` : ''),
        actions,
      );
      return tr;
    }),
  );
}

async function refreshConnections() {
  if (!lookupTarget) return;
  const answer = await api.connections(lookupTarget);
  renderConnections(answer.connections ?? []);
  if (answer.complete === false)
    $('#connections-summary').textContent += ' (some instances did not answer in time)';
}

let connectionsPoll;

/** Shows the connections of a user or a client, refreshed every 2 × REFRESH while shown. */
function lookUp(kind, id) {
  lookupTarget = { kind, id };
  $('#lookup-kind').value = kind;
  $('#lookup-id').value = id;
  $('#connections-detail').hidden = false;
  connectionsPoll?.stop();
  connectionsPoll = poll(async () => {
    try {
      await refreshConnections();
    } catch (error) {
      $('#connections-summary').textContent =
        `${describeTarget(lookupTarget)}: ${error.code}: ${error.message}`;
      $('#connections tbody').replaceChildren();
      throw error; // the poll slows down while it fails
    }
  }, REFRESH * 2);
}

$('#lookup-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const id = $('#lookup-id').value.trim();
  if (id) lookUp($('#lookup-kind').value, id);
});

$('#move-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  if (!lookupTarget) return;
  const room = $('#move-room').value.trim();
  const op = event.submitter?.value === 'leave' ? 'leave' : 'join';
  if (!room) return;
  const verb = op === 'join' ? 'into' : 'out of';
  await act(`Move ${describeTarget(lookupTarget)} ${verb} room ${room}`, () =>
    api[op](targetOf(lookupTarget), room),
  );
  connectionsPoll?.now();
});

$('#disconnect-all').addEventListener('click', async () => {
  if (!lookupTarget) return;
  await act(`Disconnect ${describeTarget(lookupTarget)}`, () => api.disconnect(targetOf(lookupTarget)));
  connectionsPoll?.now();
});

// ------------------------------------------------------------------ start

poll(refreshFleet);
