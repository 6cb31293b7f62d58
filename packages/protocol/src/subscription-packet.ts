/**
 * Subscription packets (uwsgi modifier1 224), as uWSGI 2.0 nodes send them over UDP:
 * header `e0 <datasize u16le> <command>`; command (modifier2) 0 = subscribe/refresh, any other value =
 * unsubscribe (uWSGI 2.0 semantics). The body is key/value pairs; numbers are ASCII decimal strings.
 *
 * The decoder checks framing only; field syntax (hostname, address, weight...) is validated by the
 * subscription server. `sign`, when present, must be the last pair: the signed bytes are everything in
 * the body before it (uWSGI's `EVP_Sign` base), exposed as `signedBody`.
 *
 * `sig` (Switchyard's Ed25519 / HMAC-SHA256 scheme) must also be the last pair; it covers the WHOLE
 * datagram before it, 4-byte header included (so the subscribe/unsubscribe byte and the datasize are
 * signed), exposed as `sigCovered`. Neither `sign` nor `sig` appears in `fields`.
 */
import { BadPacketError, type BadPacketReason } from './errors.js';
import {
  type DecodeOptions,
  type DecodeResult,
  type EncodablePair,
  encodePacket,
  encodeVars,
  UWSGI_HEADER_SIZE,
} from './packet-codec.js';

export const SUBSCRIPTION_MODIFIER1 = 224;

export type SubscriptionCommand = 'subscribe' | 'unsubscribe';

export interface SubscriptionPacket {
  readonly command: SubscriptionCommand;
  /** Every pair except `sign`, values decoded as UTF-8, in packet order. Unknown keys are kept. */
  readonly fields: ReadonlyMap<string, string>;
  /** Raw `sign` value (RSA signature bytes), when present. */
  readonly signature: Buffer | undefined;
  /** Body bytes covered by the signature: body[0 : start of the sign pair]. Undefined when unsigned. */
  readonly signedBody: Buffer | undefined;
  /** Raw `sig` value (Ed25519 / HMAC-SHA256 signature bytes), when the last pair is `sig`. */
  readonly sig: Buffer | undefined;
  /** Datagram bytes covered by `sig`: raw[0 : start of the sig pair], header included. */
  readonly sigCovered: Buffer | undefined;
  /** The whole datagram (header included), for signature schemes that cover the header. */
  readonly raw: Buffer;
}

/**
 * Decodes a subscription datagram. Total: returns SY_BAD_PACKET with a reason for any malformed input.
 *
 * One pass over the bytes, straight into the `fields` Map (no intermediate pair objects): this runs once
 * per datagram at up to hundreds of thousands of packets per second. The result is exactly that of
 * `decodePacket` followed by the checks below (test/subscription-decode.test.ts compares both on random
 * inputs): framing reasons in byte order first, then `wrong-modifier1`, then `sign-not-last` /
 * `sig-not-last` for the first such pair in packet order.
 */
export function decodeSubscription(input: Uint8Array, options: DecodeOptions = {}): DecodeResult<SubscriptionPacket> {
  const raw = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const maxPacket = options.maxPacketSize ?? 4096;
  const maxValue = options.maxValueSize ?? 4096;
  const rejectDuplicates = options.rejectDuplicateKeys ?? true;
  const length = raw.length;
  if (length < UWSGI_HEADER_SIZE) return fail('truncated-header', `packet of ${length} bytes has no header`);
  if (length > maxPacket) return fail('oversized-packet', `packet of ${length} bytes exceeds ${maxPacket}`);
  const datasize = raw[1]! | (raw[2]! << 8);
  if (datasize !== length - UWSGI_HEADER_SIZE) {
    return fail('size-mismatch', `header says ${datasize} bytes, packet carries ${length - UWSGI_HEADER_SIZE}`);
  }
  const fields = new Map<string, string>();
  let signature: Buffer | undefined;
  let signedBody: Buffer | undefined;
  let sig: Buffer | undefined;
  let sigCovered: Buffer | undefined;
  // The first `sign`/`sig` pair followed by another pair: reported only if the framing is sound.
  let misplaced: BadPacketError | undefined;
  let lastWasSignature: 'sign' | 'sig' | undefined;
  // Offsets below are into the vars block (`pos - 4`), as `decodeVars` reports them.
  let pos = UWSGI_HEADER_SIZE;
  while (pos < length) {
    const start = pos;
    if (pos + 2 > length) return fail('truncated-pair', `key length cut at offset ${pos - 4}`);
    const keyLen = raw[pos]! | (raw[pos + 1]! << 8);
    pos += 2;
    if (keyLen === 0) return fail('empty-key', `empty key at offset ${start - 4}`);
    if (pos + keyLen > length) return fail('truncated-pair', `key of ${keyLen} bytes cut at offset ${pos - 4}`);
    const key = fieldName(raw, pos, keyLen);
    pos += keyLen;
    if (pos + 2 > length) return fail('truncated-pair', `value length of "${key}" cut at offset ${pos - 4}`);
    const valLen = raw[pos]! | (raw[pos + 1]! << 8);
    pos += 2;
    if (valLen > maxValue) return fail('oversized-value', `value of "${key}" has ${valLen} bytes, limit ${maxValue}`);
    if (pos + valLen > length) return fail('truncated-pair', `value of "${key}" cut at offset ${pos - 4}`);
    const valueStart = pos;
    pos += valLen;
    if (lastWasSignature !== undefined && misplaced === undefined) {
      misplaced = new BadPacketError(`${lastWasSignature}-not-last`, `"${lastWasSignature}" must be the last pair`);
    }
    lastWasSignature = undefined;
    if (key === 'sign') {
      if (rejectDuplicates && signature !== undefined) return fail('duplicate-key', `key "${key}" appears twice`);
      signature = raw.subarray(valueStart, pos);
      signedBody = raw.subarray(UWSGI_HEADER_SIZE, start);
      lastWasSignature = 'sign';
    } else if (key === 'sig') {
      if (rejectDuplicates && sig !== undefined) return fail('duplicate-key', `key "${key}" appears twice`);
      sig = raw.subarray(valueStart, pos);
      sigCovered = raw.subarray(0, start);
      lastWasSignature = 'sig';
    } else {
      if (rejectDuplicates && fields.has(key)) return fail('duplicate-key', `key "${key}" appears twice`);
      fields.set(key, valLen === 0 ? '' : raw.toString('utf8', valueStart, pos));
    }
  }
  const modifier1 = raw[0]!;
  if (modifier1 !== SUBSCRIPTION_MODIFIER1) {
    return fail('wrong-modifier1', `modifier1 ${modifier1} is not a subscription (224)`);
  }
  if (misplaced !== undefined) return { ok: false, error: misplaced };
  return {
    ok: true,
    value: Object.freeze({
      command: raw[3] === 0 ? 'subscribe' : 'unsubscribe',
      fields,
      signature,
      signedBody,
      sig,
      sigCovered,
      raw,
    }),
  };
}

function fail(reason: BadPacketReason, message: string): DecodeResult<SubscriptionPacket> {
  return { ok: false, error: new BadPacketError(reason, message) };
}

/**
 * Field names uWSGI nodes send, as constants: a name that matches one is returned without allocating a
 * string (and its hash is already computed for the Map). Any other name is decoded as latin1.
 */
const KNOWN_FIELD_NAMES: readonly string[] = [
  'key',
  'address',
  'modifier1',
  'modifier2',
  'cores',
  'load',
  'weight',
  'backup',
  'proto',
  'algo',
  'notify',
  'sni_key',
  'sni_crt',
  'sni_ca',
  'unix',
  'vassal',
  'clear',
  'sign',
  'sig',
  'inactive',
];

/** KNOWN_FIELD_NAMES grouped by length, for fieldName(). */
const NAMES_BY_LENGTH: readonly (readonly string[])[] = (() => {
  const byLength: string[][] = [];
  for (const name of KNOWN_FIELD_NAMES) (byLength[name.length] ??= []).push(name);
  return byLength;
})();

function fieldName(buf: Buffer, start: number, length: number): string {
  const candidates = NAMES_BY_LENGTH[length];
  if (candidates !== undefined) {
    for (const name of candidates) {
      let i = 0;
      while (i < length && buf[start + i] === name.charCodeAt(i)) i++;
      if (i === length) return name;
    }
  }
  return buf.toString('latin1', start, start + length);
}

/** Encodes the body (vars block) of a subscription; pairs are written in the given order. */
export function encodeSubscriptionBody(pairs: Iterable<EncodablePair>): Buffer {
  return encodeVars(pairs);
}

/** Frames a subscription body (already signed, if signing is used) as a datagram. */
export function frameSubscription(command: SubscriptionCommand, body: Buffer): Buffer {
  return encodePacket(SUBSCRIPTION_MODIFIER1, command === 'subscribe' ? 0 : 1, body);
}

/** Encodes a whole unsigned subscription datagram. */
export function encodeSubscription(command: SubscriptionCommand, pairs: Iterable<EncodablePair>): Buffer {
  return frameSubscription(command, encodeSubscriptionBody(pairs));
}
