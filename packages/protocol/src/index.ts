export { BadPacketError, type BadPacketReason, ProtocolError, VarsTooLargeError } from './errors.js';
export { type HostKey, type HostKeyOptions, MAX_HOST_KEY_LENGTH, parseHostKey } from './host-key.js';
export { HostKeyMap } from './host-key-map.js';
export { MAX_MOUNT_DEPTH, type MountpointKey, parseMountpointKey } from './mountpoint-key.js';
export {
  type DecodeOptions,
  type DecodeResult,
  decodePacket,
  decodeVars,
  type EncodablePair,
  encodePacket,
  encodeVars,
  MAX_VARS_SIZE,
  UWSGI_HEADER_SIZE,
  type UwsgiPacket,
  type UwsgiPair,
} from './packet-codec.js';
export {
  decodeSubscription,
  encodeSubscription,
  encodeSubscriptionBody,
  frameSubscription,
  SUBSCRIPTION_MODIFIER1,
  type SubscriptionCommand,
  type SubscriptionPacket,
} from './subscription-packet.js';
export { encodeUwsgiRequest, UwsgiVarsBuilder } from './uwsgi-request.js';
