export {
  type Announcement,
  type AnnouncementOptions,
  type AnnouncementResult,
  EMPTY_EXTRA,
  MAX_KEY_BYTES,
  type NodeProtocol,
  parseAnnouncement,
} from './announcement.js';
export { OPTIONAL_FIELD_NAMES, type OptionalFieldName, OptionalFieldsSchema } from './announcement-schema.js';
export { BoundedLru } from './bounded-lru.js';
export { type CheckResult, PASS, refuse } from './check-result.js';
export { type Cidr, CidrSet, parseCidr, unmapIpv4 } from './cidr.js';
export {
  BadKeyError,
  BindFailedError,
  ClosedError,
  DROP_REASONS,
  DroppedPacketError,
  type DropReason,
  dropReasonCode,
  emptyDropCounters,
  InvalidOptionsError,
  isDropReason,
  SubscriptionError,
  type SubscriptionErrorCode,
} from './errors.js';
export { type HostPattern, matchesAny, parseHostPattern } from './host-pattern.js';
export {
  type AddressVerdict,
  NodeAddressPolicy,
  type NodeAddressPolicyOptions,
  type OwnListener,
} from './node-address-policy.js';
export { NonceCache, type NonceCacheOptions, type NonceState } from './nonce-cache.js';
export {
  type AckOutcome,
  ackMessage,
  loadUnixDgram,
  NotifySender,
  type NotifySenderOptions,
  type NotifyStats,
  type NotifyTarget,
  parseNotifyTarget,
  type SubscriptionAcknowledger,
} from './notify-sender.js';
export {
  type KeyLookup,
  keyFileName,
  PublicKeyDirectory,
  type PublicKeyDirectoryOptions,
} from './public-key-directory.js';
export { RateLimiter, type RateLimiterOptions } from './rate-limiter.js';
export type {
  NodeState,
  RegisteredNode,
  RemoveReason,
  TableEvent,
  TableListener,
} from './registered-node.js';
export {
  type AppliedChange,
  type ApplyResult,
  type RegistryMetrics,
  type RegistryOptions,
  SubscriptionRegistry,
} from './registry.js';
export {
  parseResubscribeTarget,
  Resubscriber,
  type ResubscriberOptions,
  type ResubscriberStats,
  type ResubscribeTarget,
} from './resubscriber.js';
export { isSupportedDigest, RsaSignCheck, type RsaSignCheckOptions } from './rsa-sign-check.js';
export { SignedEnvelopeCheck, type SignedEnvelopeCheckOptions, verifySignature } from './signed-envelope-check.js';
export {
  DEFAULT_SOURCE_RATE,
  parseSourceAllowEntry,
  rateKey,
  type SourceAllowEntry,
  SourcePolicy,
  type SourcePolicyOptions,
} from './source-policy.js';
export {
  type KeyringEntry,
  KID_PATTERN,
  kidForFile,
  loadSubscriptionKeyring,
  MIN_HMAC_SECRET_BYTES,
  parseSubscriptionKeySpec,
  SIGNING_ALGORITHMS,
  type SigningAlgorithm,
  type SigningKey,
  SubscriptionKeyring,
  type SubscriptionKeySpec,
  trimTrailingWhitespace,
} from './subscription-keyring.js';
export {
  SubscriptionSecurity,
  type SubscriptionSecurityOptions,
  type SubscriptionSecurityStats,
} from './subscription-security.js';
export {
  acceptAllVerifier,
  type BindSpec,
  type BoundAddress,
  type DatagramSource,
  type DropListener,
  parseBindAddress,
  type SubscriptionAdmission,
  type SubscriptionForwarder,
  SubscriptionServer,
  type SubscriptionServerOptions,
  type SubscriptionServerStats,
  type SubscriptionVerifier,
} from './subscription-server.js';
export {
  type AddressParseResult,
  formatUpstreamTarget,
  MAX_ADDRESS_LENGTH,
  type NodeAddress,
  parseNodeAddress,
  parseUpstreamTarget,
  type UpstreamTarget,
} from './upstream-target.js';
