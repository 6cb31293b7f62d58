export { type BadPacketReason, BadPacketError, ProtocolError, VarsTooLargeError } from './errors.js';
export {
  type DecodeOptions,
  type DecodeResult,
  type EncodablePair,
  type UwsgiPacket,
  type UwsgiPair,
  MAX_VARS_SIZE,
  UWSGI_HEADER_SIZE,
  decodePacket,
  decodeVars,
  encodePacket,
  encodeVars,
} from './packet-codec.js';
export {
  type SubscriptionCommand,
  type SubscriptionPacket,
  SUBSCRIPTION_MODIFIER1,
  decodeSubscription,
  encodeSubscription,
  encodeSubscriptionBody,
  frameSubscription,
} from './subscription-packet.js';
export { UwsgiVarsBuilder, encodeUwsgiRequest } from './uwsgi-request.js';
export { type HostKey, type HostKeyOptions, MAX_HOST_KEY_LENGTH, parseHostKey } from './host-key.js';
