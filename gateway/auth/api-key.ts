/**
 * The API-key format: `igk_<id>_<secret><check>`, e.g. `igk_4Fq0ZbW9xK2m_…` (55 characters).
 *
 * - `id`: 12 base62 characters (~71 bits), public: the store looks keys up by it and shows it.
 * - `secret`: 32 base62 characters from crypto.randomBytes (~190 bits); only its SHA-256 digest is
 *   ever stored.
 * - `check`: CRC-32 of everything before it, as 6 base62 characters (62^6 > 2^32). CRC-32 detects
 *   every error burst of up to 32 bits, so every single-character typo is caught — and random or
 *   truncated strings are rejected — without a store lookup. It is not a MAC: anyone can compute it,
 *   which is why the negative cache in key-verifier.ts is bounded. (GitHub's token format, whose
 *   `ghp_` tokens end in a base62 CRC-32, is the model here.)
 *
 * @example
 *   const { key, id, secret } = generateApiKey();
 *   parseApiKey(key);              // → { id, secret }
 *   parseApiKey(key.slice(0, -1)); // → undefined
 *   digestsEqual(digest(secret), record.digest);
 *   secretMatches(secret, digestBytes(record.digest)); // the per-request check: raw bytes, no hex
 */
import { hash, randomBytes, timingSafeEqual } from 'node:crypto';

export const API_KEY_PREFIX = 'igk_';
export const KEY_ID_LENGTH = 12;
export const SECRET_LENGTH = 32;
export const CHECK_LENGTH = 6;
/** Total length of a key: prefix, id, separator, secret, check. */
export const API_KEY_LENGTH = API_KEY_PREFIX.length + KEY_ID_LENGTH + 1 + SECRET_LENGTH + CHECK_LENGTH;

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const KEY_SHAPE = new RegExp(`^${API_KEY_PREFIX}([0-9A-Za-z]{${KEY_ID_LENGTH}})_([0-9A-Za-z]{${SECRET_LENGTH}})([0-9A-Za-z]{${CHECK_LENGTH}})$`);
const ID_SHAPE = new RegExp(`^[0-9A-Za-z]{${KEY_ID_LENGTH}}$`);

export interface ParsedApiKey {
  id: string;
  secret: string;
}

export interface GeneratedApiKey extends ParsedApiKey {
  /** The full key, shown to its owner once and never stored. */
  key: string;
}

/** Uniform base62 string: bytes ≥ 248 are dropped so that `byte % 62` has no modulo bias. */
function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248) out += BASE62[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

function toBase62(value: number, width: number): string {
  let out = '';
  for (let rest = value; rest > 0; rest = Math.floor(rest / 62)) out = BASE62[rest % 62]! + out;
  return out.padStart(width, '0');
}

// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), the same value as zlib.crc32, which only
// exists from Node 20.15 on while package.json allows any Node 20.
const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

export function crc32(text: string): number {
  let crc = 0xffffffff;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0x7f) return crc32Bytes(Buffer.from(text, 'utf8')); // keys are ASCII: this is for anything else
    crc = CRC_TABLE[(crc ^ code) & 0xff]! ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function crc32Bytes(bytes: Buffer): number {
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = CRC_TABLE[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function checkOf(body: string): string {
  return toBase62(crc32(body), CHECK_LENGTH);
}

/** Formats an id and secret as a key with its checksum. */
export function formatApiKey(id: string, secret: string): string {
  const body = `${API_KEY_PREFIX}${id}_${secret}`;
  return body + checkOf(body);
}

/** A fresh random key id (public; also used to name the key in the store). */
export function generateKeyId(): string {
  return randomBase62(KEY_ID_LENGTH);
}

/** A fresh key: random id and secret, with the checksum appended. */
export function generateApiKey(): GeneratedApiKey {
  const id = generateKeyId();
  const secret = randomBase62(SECRET_LENGTH);
  return { id, secret, key: formatApiKey(id, secret) };
}

/** `{ id, secret }` when `text` has the key's exact shape and a correct checksum, else undefined. */
export function parseApiKey(text: string): ParsedApiKey | undefined {
  if (text.length !== API_KEY_LENGTH) return undefined;
  const match = KEY_SHAPE.exec(text);
  if (match === null) return undefined;
  const [, id, secret, check] = match as unknown as [string, string, string, string];
  if (checkOf(text.slice(0, -CHECK_LENGTH)) !== check) return undefined;
  return { id, secret };
}

/** Whether a string could be a key id (CLI arguments, admin API paths). */
export function isKeyId(text: string): boolean {
  return ID_SHAPE.test(text);
}

/** Whether `text` claims to be an API key (by its prefix), valid or not. */
export function looksLikeApiKey(text: string): boolean {
  return text.startsWith(API_KEY_PREFIX);
}

/** What the store keeps of a secret: its SHA-256, hex. */
export function digest(secret: string): string {
  return hash('sha256', secret, 'hex');
}

/** A stored hex digest as its 32 raw bytes; undefined when it is not one. */
export function digestBytes(hex: string): Buffer | undefined {
  const bytes = Buffer.from(hex, 'hex');
  return bytes.length === 32 && hex.length === 64 ? bytes : undefined;
}

/**
 * Constant-time comparison of two hex SHA-256 digests. Both are 64 hex characters when well formed;
 * anything else compares unequal (timingSafeEqual needs equal lengths, and the length is public).
 */
export function digestsEqual(a: string, b: string): boolean {
  const left = digestBytes(a);
  const right = digestBytes(b);
  return left !== undefined && right !== undefined && timingSafeEqual(left, right);
}

/**
 * Whether `secret` hashes to `expected` (raw SHA-256 bytes), in constant time. This is the check
 * every authenticated request makes: the one-shot `crypto.hash` straight to bytes, compared as
 * bytes, costs a fraction of createHash().update().digest('hex') plus two hex decodings.
 */
export function secretMatches(secret: string, expected: Buffer | undefined): boolean {
  return expected !== undefined && expected.length === 32 && timingSafeEqual(hash('sha256', secret, 'buffer'), expected);
}

/** What lists and logs show of a key: enough to recognise it, nothing to use it. */
export function displayPrefix(id: string, secret: string): string {
  return `${API_KEY_PREFIX}${id}_${secret.slice(0, 4)}`;
}
