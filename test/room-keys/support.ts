import { roomKeys, type TRoomKeysHook } from '../../src/client/room-keys.ts';
import { base64ToBytes } from '../../src/crypto/base64.ts';
import { createEcdhEncryption } from '../../src/crypto/ecdh-session.ts';
import type { IRoomKeysOptions } from '../../src/room-keys/types.ts';
import type { TTestServerOptions } from '../support/server.ts';

export interface IHeldKey {
  room: string;
  gen: string;
  key: string;
}

/** `roomKeys()` that also records every room key the client was given (what a member could keep). */
export function keyRecordingHook(): { hook: TRoomKeysHook; keys: IHeldKey[] } {
  const keys: IHeldKey[] = [];
  const inner = roomKeys();
  const hook: TRoomKeysHook = (frame, decrypted, report, accept) => {
    if (frame.event === 'ws:room-key' && decrypted) keys.push(frame.data as IHeldKey);
    return inner(frame, decrypted, report, accept);
  };
  return { hook, keys };
}

/** Server options with per-client encryption and sealed rooms (`secret:*`). */
export async function sealedServerOptions(
  roomKeysOptions: Partial<IRoomKeysOptions> = {},
  extra: TTestServerOptions = {},
): Promise<TTestServerOptions> {
  const encryption = await createEcdhEncryption();
  return {
    requireEncryption: true,
    handshakeFn: encryption.handshakeFn,
    outboundTransformer: encryption.outboundTransformer,
    clientDisconnectedFn: ({ clientId }) => {
      encryption.forget(clientId);
    },
    validateRoomFn: ({ rooms }) => rooms,
    roomKeys: { rooms: (room) => room.startsWith('secret:'), ...roomKeysOptions },
    ...extra,
  };
}

/** The sealed frames (`ws:sealed`) among raw frames received. */
export function sealedFrames(raw: string[]): Array<{ room: string; gen: string; iv: string; ct: string }> {
  return raw
    .map((text) => JSON.parse(text) as { event: string; data: unknown })
    .filter((frame) => frame.event === 'ws:sealed')
    .map((frame) => frame.data as { room: string; gen: string; iv: string; ct: string });
}

/** Tries to open a sealed frame with a key; the plaintext, or undefined when it does not open. */
export async function tryOpen(
  sealed: { room: string; iv: string; ct: string },
  keyB64: string,
): Promise<string | undefined> {
  const key = await crypto.subtle.importKey('raw', base64ToBytes(keyB64), 'AES-GCM', false, ['decrypt']);
  try {
    const plain = await crypto.subtle.decrypt(
      {
        name: 'AES-GCM',
        iv: base64ToBytes(sealed.iv),
        additionalData: new TextEncoder().encode(sealed.room),
      },
      key,
      base64ToBytes(sealed.ct),
    );
    return new TextDecoder().decode(plain);
  } catch {
    return undefined;
  }
}
