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
 * keys such as `inactive` that no server parses).
 *
 * An empty value counts as an absent field for every optional field: uWSGI tests the value length
 * (`if (usr->proto_len)`), and `atoi("")` is 0, so `weight=` means the default.
 */
import { parseHostKey, parseMountpointKey, type SubscriptionPacket } from '@switchyard/protocol';
import { z } from 'zod';
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

const MAX_UINT32 = 0xffff_ffff;

/** ASCII decimal (digits only: no sign, no spaces, no exponent) in 0..max. */
function decimal(max: number) {
  return z
    .string()
    .regex(/^[0-9]{1,16}$/, 'not an ASCII decimal integer')
    .transform(Number)
    .pipe(z.number().int().min(0).max(max));
}

/** A free-form string of at most `max` UTF-8 bytes. */
function bytes(max: number) {
  return z.string().refine((s) => Buffer.byteLength(s, 'utf8') <= max, `longer than ${max} bytes`);
}

/** Optional fields. `key` and `address` are checked before, with their own drop reasons. */
const OptionalFields = z.strictObject({
  modifier1: decimal(255).optional(),
  modifier2: decimal(255).optional(),
  cores: decimal(MAX_UINT32).optional(),
  load: decimal(MAX_UINT32).optional(),
  weight: decimal(1000).optional(),
  backup: decimal(255).optional(),
  unix: decimal(Number.MAX_SAFE_INTEGER).optional(),
  proto: z
    .string()
    .regex(/^[A-Za-z][A-Za-z0-9._+-]{0,31}$/, 'not a protocol name')
    .optional(),
  algo: z
    .string()
    .regex(/^[a-z0-9_-]{1,32}(:[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64})?$/, 'not an algorithm name')
    .optional(),
  notify: bytes(101).optional(),
  sni_key: bytes(1024).optional(),
  sni_crt: bytes(1024).optional(),
  sni_ca: bytes(1024).optional(),
  vassal: bytes(255).optional(),
  clear: z.enum(['0', '1']).optional(),
});

type OptionalFieldName = keyof z.input<typeof OptionalFields>;

const OPTIONAL_FIELD_NAMES: ReadonlySet<string> = new Set<string>(Object.keys(OptionalFields.shape));

const FORBIDDEN_IN_VALUE = /[\r\n\0]/;
const CONTROL_IN_NAME = /[\u0000-\u001f\u007f]/;

/** Validates the fields of a decoded subscription packet; total (never throws). */
export function parseAnnouncement(packet: SubscriptionPacket, options: AnnouncementOptions = {}): AnnouncementResult {
  const fields = packet.fields;
  for (const [name, value] of fields) {
    if (CONTROL_IN_NAME.test(name)) return drop('bad-field', 'a field name contains a control byte');
    if (FORBIDDEN_IN_VALUE.test(value)) return drop('bad-field', `field "${name}" contains CR, LF or NUL`);
  }

  const rawKey = fields.get('key');
  if (rawKey === undefined || rawKey.length === 0) return drop('missing-key', 'no "key" field');
  const keyBytes = Buffer.byteLength(rawKey, 'utf8');
  if (keyBytes > MAX_KEY_BYTES) return drop('key-too-long', `key of ${keyBytes} bytes exceeds ${MAX_KEY_BYTES}`);
  const hostKey =
    options.mountpoints === true && rawKey.includes('/')
      ? parseMountpointKey(rawKey)
      : parseHostKey(rawKey, { allowWildcard: true });
  if (hostKey === undefined) return drop('bad-key', 'key is not a valid host[:port] (or host/path with mountpoints)');

  const rawAddress = fields.get('address');
  if (rawAddress === undefined || rawAddress.length === 0) return drop('missing-address', 'no "address" field');
  const address = parseNodeAddress(rawAddress);
  if (!address.ok) return drop('bad-address', address.detail);

  const known: Partial<Record<OptionalFieldName, string>> = {};
  const extra = Object.create(null) as Record<string, string>;
  for (const [name, value] of fields) {
    if (name === 'key' || name === 'address') continue;
    if (OPTIONAL_FIELD_NAMES.has(name)) {
      if (value.length > 0) known[name as OptionalFieldName] = value;
    } else {
      extra[name] = value;
    }
  }
  const parsed = OptionalFields.safeParse(known);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined ? 'field' : `field "${issue.path.map(String).join('.')}"`;
    return drop('bad-field', `${where}: ${issue?.message ?? 'invalid'}`);
  }
  const f = parsed.data;
  const announcement: Announcement = {
    command: packet.command,
    key: hostKey.key,
    address: address.value.address,
    protocol: f.proto !== undefined && (f.proto[0] === 'h' || f.proto[0] === 'H') ? 'http' : 'uwsgi',
    weight: f.weight === undefined || f.weight === 0 ? 1 : f.weight,
    modifier1: f.modifier1 ?? 0,
    modifier2: f.modifier2 ?? 0,
    cores: f.cores ?? 0,
    load: f.load ?? 0,
    backup: f.backup ?? 0,
    algo: f.algo,
    notify: f.notify,
    sniKey: f.sni_key,
    sniCrt: f.sni_crt,
    sniCa: f.sni_ca,
    unix: f.unix,
    vassal: f.vassal,
    clear: f.clear === '1',
    extra: Object.freeze(extra),
  };
  return { ok: true, value: Object.freeze(announcement) };
}

function drop(reason: DropReason, detail: string): AnnouncementResult {
  return { ok: false, reason, detail };
}
