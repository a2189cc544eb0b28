import { WebSocketChannels, WebSocketHistoryDefaults } from '../common/constants.ts';
import { hashSlot } from '../redis/hash-slot.ts';
import type { TPubSubKind } from '../redis/pubsub-kind.ts';

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
export function historyKeys(room: string, pubSub: TPubSubKind = 'classic'): IHistoryKeys {
  if (pubSub === 'sharded') return shardedHistoryKeys(room);
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

/**
 * With sharded Pub/Sub the publish script SPUBLISHes on the room's channel, and a script may only
 * touch one slot: the keys must hash to the channel's slot. A channel `ws:room:<room>` without
 * braces hashes whole, so the keys are tagged with the whole channel name:
 * `ws:history:{ws:room:<room>}:meta`. A channel with braces hashes by its own tag rule, which a
 * tag cannot always reproduce, so its keys take a short tag known to hash to that slot, plus the
 * room's base64url encoding to keep rooms apart: `ws:history:~{<slot tag>}:<base64url>:meta`.
 */
function shardedHistoryKeys(room: string): IHistoryKeys {
  const channel = WebSocketChannels.forRoom({ room });
  const base =
    channel.includes('{') || channel.includes('}')
      ? `${WebSocketHistoryDefaults.KEY_PREFIX}~{${slotTag(hashSlot(channel))}}:${base64url(room)}`
      : `${WebSocketHistoryDefaults.KEY_PREFIX}{${channel}}`;
  return { meta: `${base}:meta`, stream: `${base}:stream` };
}

/**
 * The key holding the history generation that empty positions name (see redis-scripts.ts). One
 * key for a standalone Redis; on a Redis Cluster one per hash slot (a script may only touch one
 * slot): `ws:history:gen:{<n>}` with `<n>` hashing to the slot of the room's keys. At most 16 384
 * keys however many rooms there are, never expiring.
 */
export function generationKey(keys: IHistoryKeys, cluster: boolean): string {
  const base = `${WebSocketHistoryDefaults.KEY_PREFIX}gen`;
  return cluster ? `${base}:{${slotTag(hashSlot(clusterHashTag(keys.meta)))}}` : base;
}

let slotTags: string[] | undefined;

/** A short string hashing to `slot` (the first decimal number that does; the table is built once). */
function slotTag(slot: number): string {
  if (!slotTags) {
    const tags: string[] = new Array(16_384);
    let missing = 16_384;
    for (let n = 0; missing > 0; n++) {
      const text = String(n);
      const at = hashSlot(text);
      if (tags[at] === undefined) {
        tags[at] = text;
        missing--;
      }
    }
    slotTags = tags;
  }
  return slotTags[slot]!;
}

function base64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}
