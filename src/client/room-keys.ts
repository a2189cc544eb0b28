// Sealed rooms on the client: an optional module (not in the main bundle), given to the client as
// `createClient(url, { encryption: true, roomKeys: roomKeys() })`. It keeps each sealed room's
// generation keys (received inside the connection's `encrypted` frames), opens `ws:sealed` frames
// with them and hands the original frames back to the client, which emits them as usual.

import { base64ToBytes } from '../crypto/base64.ts';
import { RoomcastClientError } from './errors.ts';
import { decodeFrame, type IFrame, isRecord } from './frames.ts';
import type { TClientErrorCode } from './types.ts';

const SEALED = 'ws:sealed';
const KEY = 'ws:room-key';

/** Bounds of the key ring; every one is a cap on what the server (or a forger) can make it hold. */
export interface IRoomKeysClientOptions {
  /** Generations kept per room (the newest); older frames in flight still open. Default 4. */
  maxGenerations?: number;
  /** Rooms whose keys are kept (the least recently keyed are forgotten first). Default 1 024. */
  maxRooms?: number;
  /** Sealed frames held while their generation's key is on its way. Default 256. */
  maxPending?: number;
}

/**
 * What the client calls for each frame: `undefined` when the frame is not a sealed-room frame, else a
 * promise that settles once the original frames it carried (none while a key is awaited) went through
 * `accept`, in order. `decrypted`: the frame came inside the connection's own `encrypted` frame (keys
 * are only taken from there). Never rejects: problems go to `report`.
 */
export type TRoomKeysHook = (
  frame: IFrame,
  decrypted: boolean,
  report: (error: RoomcastClientError) => void,
  accept: (frame: IFrame) => unknown,
) => Promise<void> | undefined;

type TReport = (code: TClientErrorCode, message: string) => void;

interface IGenerationKey {
  key: CryptoKey;
  /** Counter of the last frame opened under this key (IV bytes 4-11). */
  last: number;
}

interface ISealed {
  room: string;
  gen: string;
  iv: Uint8Array<ArrayBuffer>;
  ct: Uint8Array<ArrayBuffer>;
  frame: IFrame;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function bound(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1)
    throw new TypeError(`[roomcast] roomKeys.${name} must be an integer >= 1`);
  return value;
}

function readSealed(frame: IFrame): ISealed | string {
  const data = frame.data;
  if (!isRecord(data)) return 'not an object';
  const { room, gen, iv, ct } = data;
  if (typeof room !== 'string' || typeof gen !== 'string' || typeof iv !== 'string' || typeof ct !== 'string')
    return 'expects { room, gen, iv, ct } strings';
  try {
    const ivBytes = base64ToBytes(iv);
    if (ivBytes.length !== 12) return 'IV must be 12 bytes';
    return { room, gen, iv: ivBytes, ct: base64ToBytes(ct), frame };
  } catch {
    return 'bad base64';
  }
}

/**
 * Sealed-room support for `createClient(url, { encryption, roomKeys: roomKeys() })`. Needs
 * `encryption`: the server hands a room's keys only through the connection's session key.
 * Errors are reported with the client's `error` event: `ROOM_KEY_MISSING` (a frame of a generation
 * whose key never came, e.g. sealed before this client joined), `DECRYPT_FAILED`, `REPLAYED_FRAME`.
 */
export function roomKeys(options: IRoomKeysClientOptions = {}): TRoomKeysHook {
  const maxGenerations = bound('maxGenerations', options.maxGenerations, 4);
  const maxRooms = bound('maxRooms', options.maxRooms, 1024);
  const maxPending = bound('maxPending', options.maxPending, 256);
  /** room → generation id → key, each map in insertion order (oldest first). */
  const rooms = new Map<string, Map<string, IGenerationKey>>();
  let pending: ISealed[] = [];

  const open = async (sealed: ISealed, gen: IGenerationKey, report: TReport): Promise<IFrame | undefined> => {
    const view = new DataView(sealed.iv.buffer, sealed.iv.byteOffset, 12);
    const counter = view.getUint32(4) * 0x1_0000_0000 + view.getUint32(8);
    if (counter <= gen.last) {
      report(
        'REPLAYED_FRAME',
        `room ${sealed.room} generation ${sealed.gen}: frame ${counter} <= ${gen.last}`,
      );
      return undefined;
    }
    let plain: ArrayBuffer;
    try {
      plain = await crypto.subtle.decrypt(
        { name: 'AES-GCM', iv: sealed.iv, tagLength: 128, additionalData: encoder.encode(sealed.room) },
        gen.key,
        sealed.ct,
      );
    } catch {
      report('DECRYPT_FAILED', `room ${sealed.room}: a sealed frame did not open`);
      return undefined;
    }
    // Only a frame that opened moves the counter: a forged one cannot skip the real ones.
    if (counter > gen.last) gen.last = counter;
    const inner = decodeFrame(decoder.decode(plain));
    if (typeof inner === 'string') {
      report('DECRYPT_FAILED', `room ${sealed.room}: sealed ${inner}`);
      return undefined;
    }
    // The position (history rooms) travels outside the ciphertext, as for `encrypted` frames.
    inner.position ??= sealed.frame.position;
    return inner;
  };

  const addKey = async (data: unknown, report: TReport): Promise<IFrame[]> => {
    if (
      !isRecord(data) ||
      typeof data.room !== 'string' ||
      typeof data.gen !== 'string' ||
      typeof data.key !== 'string'
    ) {
      report('BAD_FRAME', 'a room key frame without { room, gen, key }');
      return [];
    }
    const { room, gen } = data;
    let key: CryptoKey;
    try {
      const raw = base64ToBytes(data.key);
      if (raw.length !== 32) throw new Error('not 32 bytes');
      key = await crypto.subtle.importKey('raw', raw, 'AES-GCM', false, ['decrypt']);
    } catch (error) {
      report('BAD_FRAME', `room ${room}: unusable key (${(error as Error).message})`);
      return [];
    }
    let gens = rooms.get(room);
    if (gens)
      rooms.delete(room); // re-inserted last: most recently keyed
    else if (rooms.size >= maxRooms) rooms.delete(rooms.keys().next().value as string);
    gens ??= new Map();
    rooms.set(room, gens);
    if (!gens.has(gen)) {
      if (gens.size >= maxGenerations) gens.delete(gens.keys().next().value as string);
      gens.set(gen, { key, last: 0 });
    }
    // Frames that waited for this key open now, in arrival order. A room's keys come in the order
    // of its generations, so a waiting frame of another, still unknown generation of this room
    // will never get its key: dropped and reported.
    const opened: IFrame[] = [];
    const waiting = pending;
    pending = [];
    for (const sealed of waiting) {
      if (sealed.room !== room) pending.push(sealed);
      else {
        const known = gens.get(sealed.gen);
        if (!known) report('ROOM_KEY_MISSING', `room ${room}: no key for generation ${sealed.gen}`);
        else {
          const frame = await open(sealed, known, report);
          if (frame) opened.push(frame);
        }
      }
    }
    return opened;
  };

  const take = async (frame: IFrame, report: TReport): Promise<IFrame[]> => {
    const sealed = readSealed(frame);
    if (typeof sealed === 'string') {
      report('BAD_FRAME', `ignored a sealed frame: ${sealed}`);
      return [];
    }
    const gen = rooms.get(sealed.room)?.get(sealed.gen);
    if (gen) {
      const opened = await open(sealed, gen, report);
      return opened ? [opened] : [];
    }
    // The key may still be on its way (it travels through the session, the frame natively).
    if (pending.length >= maxPending) {
      const dropped = pending.shift()!;
      report(
        'ROOM_KEY_MISSING',
        `room ${dropped.room}: no key for generation ${dropped.gen} (pending frames full)`,
      );
    }
    pending.push(sealed);
    return [];
  };

  return (frame, decrypted, reportError, accept) => {
    const report: TReport = (code, message) => reportError(new RoomcastClientError(code, message, frame));
    const opened =
      frame.event === KEY && decrypted
        ? addKey(frame.data, report)
        : frame.event === SEALED && !decrypted
          ? take(frame, report)
          : undefined;
    return opened?.then(async (frames) => {
      for (const one of frames) await accept(one);
    });
  };
}
