export {
  type Announcement,
  type AnnouncementOptions,
  type AnnouncementResult,
  MAX_KEY_BYTES,
  type NodeProtocol,
  parseAnnouncement,
} from './announcement.js';
export {
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
export type {
  NodeState,
  RegisteredNode,
  RemoveReason,
  TableEvent,
  TableListener,
} from './registered-node.js';
export { type ApplyResult, type RegistryMetrics, type RegistryOptions, SubscriptionRegistry } from './registry.js';
export {
  acceptAllVerifier,
  type BindSpec,
  type BoundAddress,
  type DatagramSource,
  parseBindAddress,
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
