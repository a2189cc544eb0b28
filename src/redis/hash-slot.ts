/** Redis Cluster has 16384 hash slots. */
const SLOT_COUNT = 16_384;

/** CRC16-CCITT (XModem) lookup table, the checksum Redis Cluster hashes keys with. */
const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
    table[i] = crc & 0xffff;
  }
  return table;
})();

const encoder = new TextEncoder();

/**
 * The hash slot of a key or shard channel name: CRC16 of its bytes, or only of
 * the part between the first `{` and the next `}` when that part is not empty.
 * ASCII strings are read in place (no allocation on the publish path).
 */
export function hashSlot(key: string | Uint8Array): number {
  if (typeof key === 'string' && !isAscii(key)) return hashSlot(encoder.encode(key));
  const byteAt = typeof key === 'string' ? (i: number) => key.charCodeAt(i) : (i: number) => key[i] as number;
  const length = key.length;
  let start = 0;
  let end = length;
  for (let open = 0; open < length; open++) {
    if (byteAt(open) !== 0x7b) continue; // '{'
    for (let close = open + 1; close < length; close++) {
      if (byteAt(close) !== 0x7d) continue; // '}'
      if (close > open + 1) {
        start = open + 1;
        end = close;
      }
      break;
    }
    break;
  }
  let crc = 0;
  for (let i = start; i < end; i++)
    crc = ((crc << 8) ^ CRC16_TABLE[((crc >> 8) ^ byteAt(i)) & 0xff]!) & 0xffff;
  return crc % SLOT_COUNT;
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}
