/**
 * The uwsgi packet framing shared by every uwsgi message (requests to workers and subscriptions):
 *
 *   offset 0  u8     modifier1
 *   offset 1  u16le  datasize (bytes of the vars block that follows, 0..65535)
 *   offset 3  u8     modifier2
 *   offset 4  vars:  repeated { u16le keylen, key, u16le vallen, value }
 *
 * Decoding is total: any input yields a typed packet or a BadPacketError (SY_BAD_PACKET) naming the
 * reason. Unlike uWSGI (which applies the pairs decoded before a malformed one), a packet is
 * all-or-nothing here. Keys are decoded as latin1 (byte-exact); values stay Buffers (subarrays of the
 * input, no copy) so binary values such as RSA signatures survive.
 */
import { BadPacketError, VarsTooLargeError } from './errors.js';

export const UWSGI_HEADER_SIZE = 4;
export const MAX_VARS_SIZE = 0xffff;

export interface UwsgiPair {
  readonly key: string;
  readonly value: Buffer;
  /** Offset of this pair's first byte (its key length) inside the vars block. */
  readonly offset: number;
}

export interface UwsgiPacket {
  readonly modifier1: number;
  readonly modifier2: number;
  /** The vars block (subarray of the input). */
  readonly body: Buffer;
  readonly pairs: readonly UwsgiPair[];
}

export type DecodeResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: BadPacketError };

export interface DecodeOptions {
  /** Largest accepted datagram including the header, in bytes. Default 4096 (uWSGI's receive buffer). */
  readonly maxPacketSize?: number;
  /** Largest accepted value, in bytes. Default 4096. */
  readonly maxValueSize?: number;
  /** Reject a key that appears twice. Default true. */
  readonly rejectDuplicateKeys?: boolean;
}

function fail<T>(reason: BadPacketError['reason'], message: string): DecodeResult<T> {
  return { ok: false, error: new BadPacketError(reason, message) };
}

/** Decodes one whole packet: header, then the vars block that must fill the rest of `input` exactly. */
export function decodePacket(input: Uint8Array, options: DecodeOptions = {}): DecodeResult<UwsgiPacket> {
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const maxPacket = options.maxPacketSize ?? 4096;
  if (buf.length < UWSGI_HEADER_SIZE) return fail('truncated-header', `packet of ${buf.length} bytes has no header`);
  if (buf.length > maxPacket) return fail('oversized-packet', `packet of ${buf.length} bytes exceeds ${maxPacket}`);
  const datasize = buf.readUInt16LE(1);
  if (datasize !== buf.length - UWSGI_HEADER_SIZE) {
    return fail('size-mismatch', `header says ${datasize} bytes, packet carries ${buf.length - UWSGI_HEADER_SIZE}`);
  }
  const body = buf.subarray(UWSGI_HEADER_SIZE);
  const vars = decodeVars(body, options);
  if (!vars.ok) return vars;
  return {
    ok: true,
    value: Object.freeze({ modifier1: buf[0] as number, modifier2: buf[3] as number, body, pairs: vars.value }),
  };
}

/** Decodes a vars block that must consist of whole pairs only. */
export function decodeVars(body: Buffer, options: DecodeOptions = {}): DecodeResult<readonly UwsgiPair[]> {
  const maxValue = options.maxValueSize ?? 4096;
  const rejectDuplicates = options.rejectDuplicateKeys ?? true;
  const pairs: UwsgiPair[] = [];
  const seen = rejectDuplicates ? new Set<string>() : undefined;
  let pos = 0;
  while (pos < body.length) {
    const start = pos;
    if (pos + 2 > body.length) return fail('truncated-pair', `key length cut at offset ${pos}`);
    const keyLen = body.readUInt16LE(pos);
    pos += 2;
    if (keyLen === 0) return fail('empty-key', `empty key at offset ${start}`);
    if (pos + keyLen > body.length) return fail('truncated-pair', `key of ${keyLen} bytes cut at offset ${pos}`);
    const key = body.toString('latin1', pos, pos + keyLen);
    pos += keyLen;
    if (pos + 2 > body.length) return fail('truncated-pair', `value length of "${key}" cut at offset ${pos}`);
    const valLen = body.readUInt16LE(pos);
    pos += 2;
    if (valLen > maxValue) return fail('oversized-value', `value of "${key}" has ${valLen} bytes, limit ${maxValue}`);
    if (pos + valLen > body.length) return fail('truncated-pair', `value of "${key}" cut at offset ${pos}`);
    const value = body.subarray(pos, pos + valLen);
    pos += valLen;
    if (seen !== undefined) {
      if (seen.has(key)) return fail('duplicate-key', `key "${key}" appears twice`);
      seen.add(key);
    }
    pairs.push(Object.freeze({ key, value, offset: start }));
  }
  return { ok: true, value: Object.freeze(pairs) };
}

/** A pair to encode; string values are written as UTF-8 (hostnames and numbers are ASCII anyway). */
export type EncodablePair = readonly [key: string, value: string | Uint8Array];

/** Encodes a vars block (no header). Throws VarsTooLargeError (SY_VARS_TOO_LARGE) past 65535 bytes. */
export function encodeVars(pairs: Iterable<EncodablePair>): Buffer {
  const parts: Buffer[] = [];
  let size = 0;
  for (const [key, value] of pairs) {
    const k = Buffer.from(key, 'latin1');
    const v = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
    if (k.length === 0) throw new BadPacketError('empty-key', 'cannot encode an empty key');
    if (k.length > 0xffff || v.length > 0xffff) throw new VarsTooLargeError(k.length + v.length);
    const head = Buffer.allocUnsafe(2);
    head.writeUInt16LE(k.length, 0);
    const mid = Buffer.allocUnsafe(2);
    mid.writeUInt16LE(v.length, 0);
    parts.push(head, k, mid, v);
    size += 4 + k.length + v.length;
  }
  if (size > MAX_VARS_SIZE) throw new VarsTooLargeError(size);
  return Buffer.concat(parts, size);
}

/** Encodes a whole packet: header (with the real datasize) followed by `body`. */
export function encodePacket(modifier1: number, modifier2: number, body: Buffer): Buffer {
  if (body.length > MAX_VARS_SIZE) throw new VarsTooLargeError(body.length);
  const out = Buffer.allocUnsafe(UWSGI_HEADER_SIZE + body.length);
  out[0] = modifier1 & 0xff;
  out.writeUInt16LE(body.length, 1);
  out[3] = modifier2 & 0xff;
  body.copy(out, UWSGI_HEADER_SIZE);
  return out;
}
