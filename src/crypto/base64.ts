// Browser-safe base64 (no Buffer), shared by the server helpers and the client SDK.

const CHUNK = 0x8000;

export function bytesToBase64(bytes: Uint8Array): string {
  // The standard encoder where the runtime has it (Bun, recent browsers): a few times faster than
  // `btoa` of a string built from the bytes (an encrypted frame is encoded twice per client).
  const native = (bytes as { toBase64?: () => string }).toBase64;
  if (native) return native.call(bytes);
  let binary = '';
  for (let i = 0; i < bytes.length; i += CHUNK) {
    binary += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  }
  return btoa(binary);
}

export function base64ToBytes(text: string): Uint8Array<ArrayBuffer> {
  let binary: string;
  try {
    binary = atob(text);
  } catch {
    throw new Error('Invalid base64 input');
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
