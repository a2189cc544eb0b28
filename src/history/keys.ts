import { WebSocketHistoryDefaults } from '../common/constants.ts';

export interface IHistoryKeys {
  /** Hash `{ offset, epoch }`: the room's position. */
  meta: string;
  /** Stream of the retained publications (fields `o` offset, `e` event, `d` data JSON). */
  stream: string;
}

/**
 * The Redis keys of a room's history: `ws:history:{<room>}:meta` and `…:stream`. The braces are a
 * Redis Cluster hash tag, so both keys of a room sit in one slot (a script may only touch keys of
 * one slot). A name containing `{` or `}` would move or end the tag, so such a name is tagged by
 * its base64url encoding instead, behind a `~` that keeps the two forms from ever colliding.
 */
export function historyKeys(room: string): IHistoryKeys {
  const tag = room.includes('{') || room.includes('}') ? `~{${base64url(room)}}` : `{${room}}`;
  const base = WebSocketHistoryDefaults.KEY_PREFIX + tag;
  return { meta: `${base}:meta`, stream: `${base}:stream` };
}

/**
 * The part of a key Redis Cluster hashes: the text between the first `{` and the first `}` after
 * it when that is non-empty, else the whole key (the rule of the Cluster specification).
 */
export function clusterHashTag(key: string): string {
  const open = key.indexOf('{');
  if (open === -1) return key;
  const close = key.indexOf('}', open + 1);
  if (close === -1 || close === open + 1) return key;
  return key.slice(open + 1, close);
}

function base64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}
