/**
 * The documented reference for the optional fields of a subscription packet, as a zod schema. It is the
 * specification, not the hot path: `parseAnnouncement` (announcement.ts) checks the same rules with
 * hand-written code, because a zod parse per datagram cost more than everything else on the intake path
 * together (profiled at ~40% of the CPU per packet). test/announcement-equivalence.test.ts runs both on
 * random field values and requires the same verdict and the same values.
 *
 * Rules (an empty value counts as absent and is never given to the schema):
 *  - modifier1, modifier2, backup: ASCII decimal 0..255; weight 0..1000; cores, load 0..2^32-1;
 *    unix 0..2^53-1. "ASCII decimal" = 1..16 digits, no sign, space, dot or exponent.
 *  - proto: a letter, then up to 31 of `[A-Za-z0-9._+-]`.
 *  - algo: `[a-z0-9_-]{1,32}`, optionally `:` and a 1..64-character HTTP token (`hash-header:X-User`).
 *  - notify ≤ 101 UTF-8 bytes; sni_key, sni_crt, sni_ca ≤ 1024; vassal ≤ 255.
 *  - clear: `0` or `1`.
 */
import { z } from 'zod';

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
export const OptionalFieldsSchema = z.strictObject({
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

export type OptionalFieldName = keyof z.input<typeof OptionalFieldsSchema>;

/** The optional field names, in the schema's (= checking) order. */
export const OPTIONAL_FIELD_NAMES: readonly OptionalFieldName[] = Object.freeze(
  Object.keys(OptionalFieldsSchema.shape) as OptionalFieldName[],
);
