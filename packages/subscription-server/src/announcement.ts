/**
 * Announcement: the validated, frozen meaning of one decoded subscription packet. This is the boundary
 * where packet fields (all strings on the wire) are checked once; everything downstream trusts the types.
 *
 * Validation order, first failure wins (each maps to one DropReason):
 *  1. CR, LF or NUL in any field value, or a control byte in a field name      → bad-field
 *  2. `key`: absent or empty → missing-key; over 255 bytes → key-too-long;
 *     not a valid host key (shared normaliser, wildcard `.example.com` allowed) → bad-key
 *  3. `address`: absent or empty → missing-address; invalid (see upstream-target.ts) → bad-address
 *  4. every other known field (zod schema below)                              → bad-field
 * Unknown fields are kept in `extra` and otherwise ignored (uWSGI ignores them too; newer clients send
 * keys such as `inactive` that no server parses). Without unknown fields `extra` is one shared frozen
 * empty object (a frozen null-prototype object costs V8 a map of its own, ~500 bytes).
 *
 * The rules of step 4 are specified by the zod schema in announcement-schema.ts and checked here by
 * hand, in the schema's field order: this runs once per datagram (see that file for why).
 *
 * An empty value counts as an absent field for every optional field: uWSGI tests the value length
 * (`if (usr->proto_len)`), and `atoi("")` is 0, so `weight=` means the default.
 */
import { parseHostKey, parseMountpointKey, type SubscriptionPacket } from '@switchyard/protocol';
import type { DropReason } from './errors.js';
import { parseNodeAddress } from './upstream-target.js';

export type NodeProtocol = 'uwsgi' | 'http';

export interface Announcement {
  readonly command: 'subscribe' | 'unsubscribe';
  /** Host key, normalised by `parseHostKey(raw, { allowWildcard: true }).key` (`App.Test.` → `app.test`). */
  readonly key: string;
  /** Node identity within the key, normalised (`:3031` → `0.0.0.0:3031`); see upstream-target.ts. */
  readonly address: string;
  /** `proto` starting with `h`/`H` → 'http'; anything else or absent → 'uwsgi' (2.0.x nodes send none). */
  readonly protocol: NodeProtocol;
  /** Balancer weight 1..1000; a missing or 0 weight is 1 (uWSGI). */
  readonly weight: number;
  /** modifier1 to forward with, 0..255, default 0 (0 = WSGI). */
  readonly modifier1: number;
  /** modifier2 to forward with, 0..255, default 0. */
  readonly modifier2: number;
  /** Informational (processes × threads), default 0. */
  readonly cores: number;
  /** Informational, default 0. */
  readonly load: number;
  /** Backup level 0..255, default 0 (0 = primary). */
  readonly backup: number;
  /** Per-host balancer name as sent, `[a-z0-9_-]{1,32}` with an optional `:TOKEN` (`hash-header:X-User`). */
  readonly algo: string | undefined;
  /** UNIX datagram socket path on the node's host for acks, as sent (at most 101 bytes). */
  readonly notify: string | undefined;
  readonly sniKey: string | undefined;
  readonly sniCrt: string | undefined;
  readonly sniCa: string | undefined;
  /** Unix timestamp in seconds (signed packets). */
  readonly unix: number | undefined;
  readonly vassal: string | undefined;
  /** `clear=1`: the node leaves at shutdown (master uWSGI). */
  readonly clear: boolean;
  /** Unknown fields, kept and ignored. Null prototype, frozen. */
  readonly extra: Readonly<Record<string, string>>;
}

export interface AnnouncementOptions {
  /**
   * Accept mountpoint keys `host[:port]/seg[/seg…]` (uWSGI `--subscription-mountpoints`; see
   * protocol/mountpoint-key.ts). Off: a key with `/` is bad-key. Default false.
   */
  readonly mountpoints?: boolean;
}

export type AnnouncementResult =
  | { readonly ok: true; readonly value: Announcement }
  | { readonly ok: false; readonly reason: DropReason; readonly detail: string };

/** Largest accepted key in bytes (uWSGI's buffer; a longer key would create an unreachable pool). */
export const MAX_KEY_BYTES = 255;

/** `extra` of every announcement without unknown fields. */
export const EMPTY_EXTRA: Readonly<Record<string, string>> = Object.freeze(Object.create(null));

const MAX_UINT32 = 0xffff_ffff;
const PROTO = /^[A-Za-z][A-Za-z0-9._+-]{0,31}$/;
const ALGO = /^[a-z0-9_-]{1,32}(:[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64})?$/;

/** Validates the fields of a decoded subscription packet; total (never throws). */
export function parseAnnouncement(packet: SubscriptionPacket, options: AnnouncementOptions = {}): AnnouncementResult {
  // Step 1 over every field, collecting the known ones on the way (an empty value is an absent field).
  let rawKey: string | undefined;
  let rawAddress: string | undefined;
  let modifier1: string | undefined;
  let modifier2: string | undefined;
  let cores: string | undefined;
  let load: string | undefined;
  let weight: string | undefined;
  let backup: string | undefined;
  let unix: string | undefined;
  let proto: string | undefined;
  let algo: string | undefined;
  let notify: string | undefined;
  let sniKey: string | undefined;
  let sniCrt: string | undefined;
  let sniCa: string | undefined;
  let vassal: string | undefined;
  let clear: string | undefined;
  let extra: Record<string, string> | undefined;
  for (const [name, value] of packet.fields) {
    if (hasControlByte(name)) return drop('bad-field', 'a field name contains a control byte');
    if (hasCrLfNul(value)) return drop('bad-field', `field "${name}" contains CR, LF or NUL`);
    const given = value.length > 0 ? value : undefined;
    switch (name) {
      case 'key':
        rawKey = value;
        break;
      case 'address':
        rawAddress = value;
        break;
      case 'modifier1':
        modifier1 = given;
        break;
      case 'modifier2':
        modifier2 = given;
        break;
      case 'cores':
        cores = given;
        break;
      case 'load':
        load = given;
        break;
      case 'weight':
        weight = given;
        break;
      case 'backup':
        backup = given;
        break;
      case 'unix':
        unix = given;
        break;
      case 'proto':
        proto = given;
        break;
      case 'algo':
        algo = given;
        break;
      case 'notify':
        notify = given;
        break;
      case 'sni_key':
        sniKey = given;
        break;
      case 'sni_crt':
        sniCrt = given;
        break;
      case 'sni_ca':
        sniCa = given;
        break;
      case 'vassal':
        vassal = given;
        break;
      case 'clear':
        clear = given;
        break;
      default:
        extra ??= Object.create(null) as Record<string, string>;
        extra[name] = value;
    }
  }

  // Step 2: the key.
  if (rawKey === undefined || rawKey.length === 0) return drop('missing-key', 'no "key" field');
  if (rawKey.length > MAX_KEY_BYTES / 3) {
    const keyBytes = Buffer.byteLength(rawKey, 'utf8');
    if (keyBytes > MAX_KEY_BYTES) return drop('key-too-long', `key of ${keyBytes} bytes exceeds ${MAX_KEY_BYTES}`);
  }
  const hostKey =
    options.mountpoints === true && rawKey.includes('/') ? parseMountpointKey(rawKey) : parseHostKey(rawKey, WILDCARD);
  if (hostKey === undefined) return drop('bad-key', 'key is not a valid host[:port] (or host/path with mountpoints)');

  // Step 3: the address.
  if (rawAddress === undefined || rawAddress.length === 0) return drop('missing-address', 'no "address" field');
  const address = parseNodeAddress(rawAddress);
  if (!address.ok) return drop('bad-address', address.detail);

  // Step 4: the optional fields, in the schema's order (announcement-schema.ts).
  const m1 = decimal(modifier1, 255);
  if (m1 === BAD) return badField('modifier1', 'not an ASCII decimal integer in 0..255');
  const m2 = decimal(modifier2, 255);
  if (m2 === BAD) return badField('modifier2', 'not an ASCII decimal integer in 0..255');
  const c = decimal(cores, MAX_UINT32);
  if (c === BAD) return badField('cores', 'not an ASCII decimal integer in 0..4294967295');
  const l = decimal(load, MAX_UINT32);
  if (l === BAD) return badField('load', 'not an ASCII decimal integer in 0..4294967295');
  const w = decimal(weight, 1000);
  if (w === BAD) return badField('weight', 'not an ASCII decimal integer in 0..1000');
  const b = decimal(backup, 255);
  if (b === BAD) return badField('backup', 'not an ASCII decimal integer in 0..255');
  const u = decimal(unix, Number.MAX_SAFE_INTEGER);
  if (u === BAD) return badField('unix', 'not an ASCII decimal integer');
  if (proto !== undefined && !PROTO.test(proto)) return badField('proto', 'not a protocol name');
  if (algo !== undefined && !ALGO.test(algo)) return badField('algo', 'not an algorithm name');
  if (tooLong(notify, 101)) return badField('notify', 'longer than 101 bytes');
  if (tooLong(sniKey, 1024)) return badField('sni_key', 'longer than 1024 bytes');
  if (tooLong(sniCrt, 1024)) return badField('sni_crt', 'longer than 1024 bytes');
  if (tooLong(sniCa, 1024)) return badField('sni_ca', 'longer than 1024 bytes');
  if (tooLong(vassal, 255)) return badField('vassal', 'longer than 255 bytes');
  if (clear !== undefined && clear !== '0' && clear !== '1') return badField('clear', 'not 0 or 1');

  const announcement: Announcement = {
    command: packet.command,
    key: hostKey.key,
    address: address.value.address,
    protocol: proto !== undefined && (proto[0] === 'h' || proto[0] === 'H') ? 'http' : 'uwsgi',
    weight: w === ABSENT || w === 0 ? 1 : w,
    modifier1: m1 === ABSENT ? 0 : m1,
    modifier2: m2 === ABSENT ? 0 : m2,
    cores: c === ABSENT ? 0 : c,
    load: l === ABSENT ? 0 : l,
    backup: b === ABSENT ? 0 : b,
    algo,
    notify,
    sniKey,
    sniCrt,
    sniCa,
    unix: u === ABSENT ? undefined : u,
    vassal,
    clear: clear === '1',
    extra: extra === undefined ? EMPTY_EXTRA : Object.freeze(extra),
  };
  return { ok: true, value: Object.freeze(announcement) };
}

const WILDCARD = Object.freeze({ allowWildcard: true });

/** decimal(): the field is absent. */
const ABSENT = -1;
/** decimal(): the field is not a decimal in range. */
const BAD = -2;

/** The value of an ASCII decimal field of 1..16 digits in 0..max; ABSENT or BAD otherwise. */
function decimal(text: string | undefined, max: number): number {
  if (text === undefined) return ABSENT;
  if (text.length > 16) return BAD;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch < 0x30 || ch > 0x39) return BAD;
  }
  const value = Number(text);
  return value <= max ? value : BAD;
}

/** More than `max` UTF-8 bytes? (A UTF-16 unit encodes to 1..3 bytes: most strings need no count.) */
function tooLong(text: string | undefined, max: number): boolean {
  if (text === undefined || text.length * 3 <= max) return false;
  return text.length > max || Buffer.byteLength(text, 'utf8') > max;
}

/** A C0 control byte or DEL (field names). */
function hasControlByte(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch < 0x20 || ch === 0x7f) return true;
  }
  return false;
}

/** CR, LF or NUL (field values: they would split log lines and C strings). */
function hasCrLfNul(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x0d || ch === 0x0a || ch === 0) return true;
  }
  return false;
}

function badField(name: string, message: string): AnnouncementResult {
  return drop('bad-field', `field "${name}": ${message}`);
}

function drop(reason: DropReason, detail: string): AnnouncementResult {
  return { ok: false, reason, detail };
}
