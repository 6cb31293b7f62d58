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
import { BadPacketError } from './errors.js';
import {
  type DecodeOptions,
  type DecodeResult,
  decodePacket,
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

/** Decodes a subscription datagram. Total: returns SY_BAD_PACKET with a reason for any malformed input. */
export function decodeSubscription(input: Uint8Array, options: DecodeOptions = {}): DecodeResult<SubscriptionPacket> {
  const decoded = decodePacket(input, options);
  if (!decoded.ok) return decoded;
  const packet = decoded.value;
  if (packet.modifier1 !== SUBSCRIPTION_MODIFIER1) {
    return {
      ok: false,
      error: new BadPacketError('wrong-modifier1', `modifier1 ${packet.modifier1} is not a subscription (224)`),
    };
  }
  const fields = new Map<string, string>();
  let signature: Buffer | undefined;
  let signedBody: Buffer | undefined;
  let sig: Buffer | undefined;
  let sigCovered: Buffer | undefined;
  const raw = Buffer.isBuffer(input) ? input : Buffer.from(input);
  const pairs = packet.pairs;
  for (let i = 0; i < pairs.length; i++) {
    const pair = pairs[i]!;
    if (pair.key === 'sign') {
      if (i !== pairs.length - 1) {
        return { ok: false, error: new BadPacketError('sign-not-last', '"sign" must be the last pair') };
      }
      signature = pair.value;
      signedBody = packet.body.subarray(0, pair.offset);
    } else if (pair.key === 'sig') {
      if (i !== pairs.length - 1) {
        return { ok: false, error: new BadPacketError('sig-not-last', '"sig" must be the last pair') };
      }
      sig = pair.value;
      sigCovered = raw.subarray(0, UWSGI_HEADER_SIZE + pair.offset);
    } else {
      fields.set(pair.key, pair.value.toString('utf8'));
    }
  }
  return {
    ok: true,
    value: Object.freeze({
      command: packet.modifier2 === 0 ? 'subscribe' : 'unsubscribe',
      fields,
      signature,
      signedBody,
      sig,
      sigCovered,
      raw,
    }),
  };
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
