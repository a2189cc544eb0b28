// The demo page's script. Bundled for the browser by the demo server at
// startup; it talks to the server only through the roomcast client SDK.

import { createClient, type RoomcastClient, type RoomcastClientError } from '../../../src/client/index.ts';
import {
  DemoEvents,
  type IAnnouncement,
  type IChatMessage,
  type IPresenceUpdate,
  isRoomName,
} from '../protocol.ts';

/** What the server sends us. */
interface IIncoming {
  chat: IChatMessage;
  presence: IPresenceUpdate;
  announcement: IAnnouncement;
  [DemoEvents.CHAT_REFUSED]: { room: string; reason: string };
}

/** What we send the server. */
interface IOutgoing {
  chat: { room: string; text: string };
  'rooms-changed': undefined;
}

interface IServerConfig {
  encryption: boolean;
  path: string;
  mode: string;
}

type TEntry = { kind: 'chat'; message: IChatMessage } | { kind: 'system'; text: string };
/** `{ name }`, or `{}` for a cookie session (the server reads the name from the upgrade's cookie). */
type TAuth = { name?: string };
type TClient = RoomcastClient<IIncoming, IOutgoing, TAuth>;

const DEFAULT_ROOM = 'lobby';
const NAME_PATTERN = /^[\p{L}\p{N}][\p{L}\p{N} _.-]{0,23}$/u;
const MAX_ENTRIES_PER_ROOM = 200;
/** Recent publications fetched when entering a room (chat lines among them are shown). */
const HISTORY_FETCHED = 100;

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} is missing from the page`);
  return element as T;
};

const view = {
  connection: $('connection'),
  encryptionBadge: $('encryption-badge'),
  encryptionNote: $('encryption-note'),
  signIn: $('sign-in'),
  signInForm: $<HTMLFormElement>('sign-in-form'),
  signInError: $('sign-in-error'),
  name: $<HTMLInputElement>('name'),
  cookieSession: $<HTMLInputElement>('cookie-session'),
  chat: $('chat'),
  rooms: $('rooms'),
  joinForm: $<HTMLFormElement>('join-form'),
  roomName: $<HTMLInputElement>('room-name'),
  membersRoom: $('members-room'),
  members: $('members'),
  roomTitle: $('room-title'),
  messages: $('messages'),
  chatForm: $<HTMLFormElement>('chat-form'),
  message: $<HTMLInputElement>('message'),
  announcements: $('announcements'),
  status: $('status'),
};

const state = {
  client: undefined as TClient | undefined,
  name: '',
  rooms: [] as string[],
  active: DEFAULT_ROOM,
  logs: new Map<string, TEntry[]>(),
  members: new Map<string, IPresenceUpdate['members']>(),
  unread: new Map<string, number>(),
};

// ------------------------------------------------------------------ startup

const config: IServerConfig = await fetch('/api/config').then((response) => response.json());
view.encryptionNote.hidden = !config.encryption;

view.signInForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const name = view.name.value.trim();
  if (!NAME_PATTERN.test(name)) {
    view.signInError.textContent = 'Use 1–24 letters, digits, spaces, dots, dashes or underscores.';
    return;
  }
  view.signInError.textContent = '';
  if (!view.cookieSession.checked) {
    connect(name, { name });
    return;
  }
  // Sign in over HTTP: the answer sets an HttpOnly cookie this script cannot read; the browser
  // sends it with the WebSocket upgrade, and the server authenticates the socket from it.
  void fetch('/api/session', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  }).then(
    (response) => {
      if (response.ok) connect(name, {});
      else view.signInError.textContent = 'The server refused this name. Try another one.';
    },
    () => {
      view.signInError.textContent = 'Could not reach the server.';
    },
  );
});

// A cookie session from an earlier visit signs the page in at once.
void fetch('/api/session').then(async (response) => {
  if (!response.ok || state.client) return;
  const { name } = (await response.json()) as { name: string | null };
  if (name !== null && !state.client) connect(name, {});
});

view.joinForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const room = view.roomName.value.trim().toLowerCase();
  view.roomName.value = '';
  if (isRoomName(room)) void joinRoom(room);
});

view.chatForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = view.message.value.trim();
  if (!text || !state.client) return;
  state.client.emit(DemoEvents.CHAT, { room: state.active, text });
  view.message.value = '';
});

setInterval(refreshStatus, 2_000);

// --------------------------------------------------------------- connection

function connect(name: string, auth: TAuth): void {
  state.name = name;
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const client: TClient = createClient<IIncoming, IOutgoing, TAuth>(
    `${scheme}://${location.host}${config.path}`,
    {
      auth,
      encryption: config.encryption,
    },
  );
  state.client = client;

  client.onStateChange(({ state: connection }) => {
    view.connection.dataset.state = connection;
    view.connection.textContent = connection;
  });

  let firstConnection = true;
  /** Rooms the SDK is re-joining after a reconnect; the server's member lists are compared once all are back. */
  let rejoining = new Set<string>();
  const roomsChanged = () => client.emit(DemoEvents.ROOMS_CHANGED);
  client.on('connected', (info) => {
    if (firstConnection) {
      // The server puts everyone in the lobby; joining it through the SDK as well makes the SDK
      // track its position, so the lobby is recovered after a reconnect like any other room.
      void enter(DEFAULT_ROOM).then(roomsChanged, roomsChanged);
    } else {
      // While a room is being recovered the server holds the page out of it; asking for a
      // member-list comparison before then would list the page as gone.
      rejoining = new Set(client.joinedRooms);
      if (rejoining.size === 0) roomsChanged();
    }
    firstConnection = false;
    view.signIn.hidden = true;
    view.chat.hidden = false;
    view.encryptionBadge.hidden = !info.encrypted;
    // The server puts every client in the lobby; the SDK re-joins the other rooms after a reconnect.
    state.rooms = unique([DEFAULT_ROOM, ...state.rooms.filter((room) => client.joinedRooms.has(room))]);
    if (!state.rooms.includes(state.active)) state.active = DEFAULT_ROOM;
    render();
    void refreshStatus();
    view.message.focus();
  });

  // After a reconnect (or a gap) the SDK re-joins with the last position it has; it says how it went.
  client.onRecovery(({ room, recovered, recoveredCount, position }) => {
    if (rejoining.delete(room) && rejoining.size === 0) roomsChanged();
    if (recovered) {
      const missed =
        recoveredCount === 0 ? 'nothing was missed' : `${recoveredCount} missed update(s) recovered`;
      append(room, { kind: 'system', text: `Back in sync: ${missed}.` });
    } else {
      // The missed part is gone (server restarted without persistence, or too long away): reload.
      state.logs.set(room, [
        { kind: 'system', text: 'Some messages could not be recovered; reloaded the room.' },
      ]);
      void showRecent(room, position.offset);
    }
    render();
  });

  client.on('error', (error: RoomcastClientError) => {
    if (error.code === 'REFUSED' && view.chat.hidden) {
      view.signInError.textContent = 'The server refused this name. Try another one.';
      client.close();
      state.client = undefined;
    }
  });

  client.on(DemoEvents.CHAT, (message) => {
    append(message.room, { kind: 'chat', message });
    if (message.room !== state.active)
      state.unread.set(message.room, (state.unread.get(message.room) ?? 0) + 1);
    render();
  });

  client.on(DemoEvents.PRESENCE, (update) => {
    state.members.set(update.room, update.members);
    if (update.change && update.change.name !== state.name) {
      append(update.room, { kind: 'system', text: `${update.change.name} ${update.change.action}` });
    }
    render();
    void refreshStatus(); // someone came or went: the counts changed
  });

  client.on(DemoEvents.ANNOUNCEMENT, (announcement) => {
    const item = element('li', announcement.text);
    item.append(element('small', `${announcement.from} · ${time(announcement.at)}`));
    view.announcements.prepend(item);
  });

  client.on(DemoEvents.CHAT_REFUSED, ({ room, reason }) => {
    append(room, { kind: 'system', text: `Not sent: ${reason}` });
    render();
  });
}

async function joinRoom(room: string): Promise<void> {
  const client = state.client;
  if (!client) return;
  if (state.rooms.includes(room)) {
    select(room);
    return;
  }
  try {
    await enter(room);
    state.rooms.push(room);
    client.emit(DemoEvents.ROOMS_CHANGED);
    select(room);
  } catch {
    append(state.active, { kind: 'system', text: `Could not join #${room}` });
    render();
  }
}

/** Joins a room and shows its recent messages. */
async function enter(room: string): Promise<void> {
  const client = state.client;
  if (!client) return;
  const granted = await client.join(room);
  if (!granted.includes(room)) throw new Error('not granted');
  // Everything after this position arrives live; what came before is read from the history.
  const joinedAt = client.position(room)?.offset ?? 0;
  state.logs.set(room, []);
  void showRecent(room, joinedAt);
}

/** Puts the room's retained chat messages up to offset `upTo` before what is shown of it. */
async function showRecent(room: string, upTo: number): Promise<void> {
  const client = state.client;
  if (!client || upTo === 0) return;
  try {
    const { publications } = await client.history(room, { limit: HISTORY_FETCHED, reverse: true });
    const past: TEntry[] = publications
      .filter(({ event, offset }) => event === DemoEvents.CHAT && offset <= upTo)
      .reverse()
      .map(({ data }) => ({ kind: 'chat', message: data as IChatMessage }));
    state.logs.set(room, [...past, ...(state.logs.get(room) ?? [])].slice(-MAX_ENTRIES_PER_ROOM));
    render();
  } catch {
    // The room keeps no history (or it cannot be read right now): nothing to add.
  }
}

async function leaveRoom(room: string): Promise<void> {
  const client = state.client;
  if (!client) return;
  await client.leave(room).catch(() => []);
  state.rooms = state.rooms.filter((joined) => joined !== room);
  state.members.delete(room);
  client.emit(DemoEvents.ROOMS_CHANGED);
  if (state.active === room) state.active = state.rooms[0] ?? '';
  render();
}

function select(room: string): void {
  state.active = room;
  state.unread.delete(room);
  render();
}

// ------------------------------------------------------------------ drawing

function render(): void {
  view.rooms.replaceChildren(
    ...state.rooms.map((room) => {
      const item = element('li');
      item.classList.toggle('active', room === state.active);
      item.dataset.room = room;
      const open = element('button', `#${room}`);
      open.className = 'room';
      open.type = 'button';
      open.addEventListener('click', () => select(room));
      const unread = state.unread.get(room);
      if (unread) open.append(' ', Object.assign(element('span', String(unread)), { className: 'unread' }));
      const leave = element('button', '×');
      leave.className = 'link';
      leave.type = 'button';
      leave.title = `Leave #${room}`;
      leave.setAttribute('aria-label', `Leave #${room}`);
      leave.addEventListener('click', () => void leaveRoom(room));
      item.append(open, leave);
      return item;
    }),
  );

  const active = state.active;
  view.roomTitle.textContent = active ? `#${active}` : 'No room: join one on the left';
  view.membersRoom.textContent = active ? `#${active}` : '';
  view.chatForm.hidden = !active;
  view.members.replaceChildren(
    ...(state.members.get(active) ?? []).map(({ name, instance }) => {
      const item = element('li', name);
      item.append(' ', element('small', `@${instance}`));
      return item;
    }),
  );

  const atBottom = view.messages.scrollHeight - view.messages.scrollTop - view.messages.clientHeight < 40;
  view.messages.replaceChildren(...(state.logs.get(active) ?? []).map(drawEntry));
  if (atBottom) view.messages.scrollTop = view.messages.scrollHeight;
}

function drawEntry(entry: TEntry): HTMLElement {
  if (entry.kind === 'system') {
    const item = element('li', entry.text);
    item.className = 'system';
    return item;
  }
  const { message } = entry;
  const item = element('li');
  item.classList.toggle('mine', message.from === state.name);
  item.append(
    element('span', message.from),
    message.text,
    element('span', `${time(message.at)} · via ${message.instanceId.slice(0, 8)}`),
  );
  (item.children[0] as HTMLElement).className = 'from';
  (item.children[1] as HTMLElement).className = 'meta';
  return item;
}

async function refreshStatus(): Promise<void> {
  if (view.chat.hidden) return;
  try {
    const status = await fetch('/api/status').then((response) => response.json());
    const info = state.client?.connection;
    const rows: Array<[string, string]> = [
      ['instance', String(status.instanceId)],
      ['mode', status.mode === 'redis' ? `Redis · ${status.instances} instances` : 'single instance'],
      ['clients here', String(status.clients)],
      ['rooms here', String(status.rooms)],
      ['encryption', status.encryption ? `required (${status.encryptedClients} encrypted)` : 'off'],
      [
        'you',
        info ? `${state.name} · ${info.id.slice(0, 8)}${info.encrypted ? ' (encrypted)' : ''}` : state.name,
      ],
    ];
    view.status.replaceChildren(
      ...rows.flatMap(([term, value]) => {
        const dd = element('dd', value);
        dd.dataset.field = term;
        return [element('dt', term), dd];
      }),
    );
  } catch {
    // the server is restarting: the connection pill already says so
  }
}

// ------------------------------------------------------------------ helpers

function append(room: string, entry: TEntry): void {
  const log = state.logs.get(room) ?? [];
  log.push(entry);
  if (log.length > MAX_ENTRIES_PER_ROOM) log.shift();
  state.logs.set(room, log);
}

function element<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string): HTMLElementTagNameMap[K] {
  const created = document.createElement(tag);
  if (text !== undefined) created.textContent = text;
  return created;
}

function time(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime())
    ? ''
    : date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
