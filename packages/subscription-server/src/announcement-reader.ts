/**
 * readCommonAnnouncement: the intake's fast path. Decodes and validates the packet shape nodes send
 * every few seconds (uWSGI 2.0 `--subscribe-to`: key, address, modifier1, modifier2, cores, load,
 * weight; master adds backup and proto) in one pass over the datagram bytes, without building the field
 * Map, the value strings of numeric fields or the intermediate objects of decodeSubscription +
 * parseAnnouncement.
 *
 * Contract: for any datagram it returns either `undefined` ("not the common shape: use the general
 * path") or exactly the Announcement that `parseAnnouncement(decodeSubscription(raw))` gives, with a
 * SubscriptionPacket equal to the decoded one (its `fields` Map is built on first read).
 * test/announcement-reader.test.ts checks this on random datagrams. It gives up on anything unusual, so
 * every error, and every rarely used field, is handled by the one general path:
 *  - any pair other than key, address, modifier1, modifier2, cores, load, weight, backup, proto
 *    (so signatures, notify, sni_*, algo, unknown fields);
 *  - a repeated field; a framing error; a value over 4096 bytes;
 *  - any byte ≥ 0x80, CR, LF or NUL in a value; a numeric value that is not 1..16 digits within range;
 *    a proto that is not `[A-Za-z][A-Za-z0-9._+-]{0,31}`;
 *  - a key or address the shared normalisers refuse, or a key containing `/`.
 * The caller must have checked the header (size, datasize, modifier1 224).
 */
import { decodeSubscription, parseHostKey, type SubscriptionPacket } from '@switchyard/protocol';
import { type Announcement, EMPTY_EXTRA } from './announcement.js';
import { parseNodeAddress } from './upstream-target.js';

// Field ids (bit positions in the "seen" mask).
const KEY = 0;
const ADDRESS = 1;
const MODIFIER1 = 2;
const MODIFIER2 = 3;
const CORES = 4;
const LOAD = 5;
const WEIGHT = 6;
const BACKUP = 7;
const PROTO = 8;

/** Largest value of each numeric field. */
const MAX: readonly number[] = [0, 0, 255, 255, 0xffff_ffff, 0xffff_ffff, 1000, 255];

const WILDCARD = Object.freeze({ allowWildcard: true });

/** Does buf[start, start + name.length) spell `name`? */
function spells(buf: Buffer, start: number, name: string): boolean {
  for (let i = 0; i < name.length; i++) if (buf[start + i] !== name.charCodeAt(i)) return false;
  return true;
}

/** The field id of the name at buf[start, start+length), or -1 for any other name. */
function fieldId(buf: Buffer, start: number, length: number): number {
  switch (length) {
    case 3:
      return spells(buf, start, 'key') ? KEY : -1;
    case 4:
      return spells(buf, start, 'load') ? LOAD : -1;
    case 5:
      return spells(buf, start, 'cores') ? CORES : spells(buf, start, 'proto') ? PROTO : -1;
    case 6:
      return spells(buf, start, 'weight') ? WEIGHT : spells(buf, start, 'backup') ? BACKUP : -1;
    case 7:
      return spells(buf, start, 'address') ? ADDRESS : -1;
    case 9:
      if (!spells(buf, start, 'modifier')) return -1;
      return buf[start + 8] === 0x31 ? MODIFIER1 : buf[start + 8] === 0x32 ? MODIFIER2 : -1;
    default:
      return -1;
  }
}

/**
 * The normalised text of the address at buf[start, end) when it is `a.b.c.d:port` already in normal
 * form (each part 0..255 without leading zeros, port 1..65535 without leading zeros): then it is its
 * own normal form (upstream-target.ts) and needs no parsing objects. Undefined otherwise.
 */
function plainIpv4Address(buf: Buffer, start: number, end: number): string | undefined {
  let i = start;
  for (let part = 0; part < 4; part++) {
    const first = i;
    let value = 0;
    while (i < end && buf[i]! >= 0x30 && buf[i]! <= 0x39) value = value * 10 + (buf[i++]! - 0x30);
    const digits = i - first;
    if (digits === 0 || digits > 3 || value > 255 || (digits > 1 && buf[first] === 0x30)) return undefined;
    if (i >= end || buf[i] !== (part < 3 ? 0x2e /* . */ : 0x3a) /* : */) return undefined;
    i++;
  }
  const first = i;
  let port = 0;
  while (i < end && buf[i]! >= 0x30 && buf[i]! <= 0x39) port = port * 10 + (buf[i++]! - 0x30);
  const digits = i - first;
  if (i !== end || digits === 0 || digits > 5 || buf[first] === 0x30 || port > 65535) return undefined;
  return buf.toString('latin1', start, end);
}

/** A decoded subscription whose `fields` Map is built only if someone reads it (a custom verifier). */
class LazyPacket implements SubscriptionPacket {
  readonly command: 'subscribe' | 'unsubscribe';
  readonly raw: Buffer;
  readonly signature = undefined;
  readonly signedBody = undefined;
  readonly sig = undefined;
  readonly sigCovered = undefined;
  #fields: ReadonlyMap<string, string> | undefined;

  constructor(raw: Buffer) {
    this.command = raw[3] === 0 ? 'subscribe' : 'unsubscribe';
    this.raw = raw;
    Object.freeze(this);
  }

  get fields(): ReadonlyMap<string, string> {
    if (this.#fields === undefined) {
      const decoded = decodeSubscription(this.raw);
      this.#fields = decoded.ok ? decoded.value.fields : new Map();
    }
    return this.#fields;
  }
}

export interface CommonAnnouncement {
  readonly packet: SubscriptionPacket;
  readonly announcement: Announcement;
}

/** See the module comment. `raw` has a sound header. */
export function readCommonAnnouncement(raw: Buffer): CommonAnnouncement | undefined {
  const length = raw.length;
  let seen = 0;
  let keyStart = 0;
  let keyEnd = 0;
  let addressStart = 0;
  let addressEnd = 0;
  let protoFirst = 0;
  let modifier1 = 0;
  let modifier2 = 0;
  let cores = 0;
  let load = 0;
  let weight = 0;
  let backup = 0;
  let pos = 4;
  while (pos < length) {
    if (pos + 2 > length) return undefined;
    const nameLength = raw[pos]! | (raw[pos + 1]! << 8);
    pos += 2;
    if (nameLength === 0 || pos + nameLength + 2 > length) return undefined;
    const id = fieldId(raw, pos, nameLength);
    if (id < 0 || (seen & (1 << id)) !== 0) return undefined;
    seen |= 1 << id;
    pos += nameLength;
    const valueLength = raw[pos]! | (raw[pos + 1]! << 8);
    pos += 2;
    const start = pos;
    const end = pos + valueLength;
    if (valueLength > 4096 || end > length) return undefined;
    pos = end;
    if (id === KEY || id === ADDRESS) {
      for (let i = start; i < end; i++) {
        const b = raw[i]!;
        if (b >= 0x80 || b === 0x0d || b === 0x0a || b === 0) return undefined;
      }
      if (id === KEY) {
        keyStart = start;
        keyEnd = end;
      } else {
        addressStart = start;
        addressEnd = end;
      }
    } else if (id === PROTO) {
      if (valueLength === 0) continue;
      if (valueLength > 32 || !isLetter(raw[start]!)) return undefined;
      for (let i = start + 1; i < end; i++) if (!isProtoChar(raw[i]!)) return undefined;
      protoFirst = raw[start]!;
    } else {
      if (valueLength === 0) continue; // empty = absent
      if (valueLength > 16) return undefined;
      let value = 0;
      for (let i = start; i < end; i++) {
        const b = raw[i]!;
        if (b < 0x30 || b > 0x39) return undefined;
        value = value * 10 + (b - 0x30);
      }
      if (value > MAX[id]!) return undefined;
      if (id === MODIFIER1) modifier1 = value;
      else if (id === MODIFIER2) modifier2 = value;
      else if (id === CORES) cores = value;
      else if (id === LOAD) load = value;
      else if (id === WEIGHT) weight = value;
      else backup = value;
    }
  }
  if (keyEnd === keyStart || addressEnd === addressStart) return undefined;
  // Key and address are ASCII here, so latin1 decoding is UTF-8 decoding.
  const rawKey = raw.toString('latin1', keyStart, keyEnd);
  if (rawKey.includes('/')) return undefined;
  const hostKey = parseHostKey(rawKey, WILDCARD);
  if (hostKey === undefined) return undefined;
  let address = plainIpv4Address(raw, addressStart, addressEnd);
  if (address === undefined) {
    const parsed = parseNodeAddress(raw.toString('latin1', addressStart, addressEnd));
    if (!parsed.ok) return undefined;
    address = parsed.value.address;
  }
  const packet = new LazyPacket(raw);
  const announcement: Announcement = {
    command: packet.command,
    key: hostKey.key,
    address,
    protocol: protoFirst === 0x68 /* h */ || protoFirst === 0x48 /* H */ ? 'http' : 'uwsgi',
    weight: weight === 0 ? 1 : weight,
    modifier1,
    modifier2,
    cores,
    load,
    backup,
    algo: undefined,
    notify: undefined,
    sniKey: undefined,
    sniCrt: undefined,
    sniCa: undefined,
    unix: undefined,
    vassal: undefined,
    clear: false,
    extra: EMPTY_EXTRA,
  };
  return { packet, announcement: Object.freeze(announcement) };
}

function isLetter(b: number): boolean {
  return (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
}

/** `[A-Za-z0-9._+-]` */
function isProtoChar(b: number): boolean {
  return isLetter(b) || (b >= 0x30 && b <= 0x39) || b === 0x2e || b === 0x5f || b === 0x2b || b === 0x2d;
}
