export { AccessLog, type AccessLogOptions } from './access-log.js';
export { AdminAuth, type AdminScope, type AdminTokens, MIN_TOKEN_LENGTH } from './admin-auth.js';
export { EVENTS_SUBPROTOCOL } from './admin-events.js';
export { AdminServer, type AdminServerOptions } from './admin-server.js';
export type { LastAnnounce } from './admin-views.js';
export {
  type Balancer,
  type BalancerContext,
  type BalancerDeps,
  type BalancerExplanation,
  PoolBalancer,
  standaloneDeps,
} from './balancer.js';
export {
  BALANCER_NAMES,
  BalancerCatalog,
  DEFAULT_BALANCER,
  isBalancerName,
  parseBalancerName,
} from './balancer-registry.js';
export {
  Balancing,
  type BalancingOptions,
  type BalancingStats,
  type CandidateExplanation,
  type LifecycleState,
  type RouteExplanation,
} from './balancing.js';
export {
  type CertificateFiles,
  type CertificateSource,
  CertificateStore,
  type CertificateStoreOptions,
  type LoadedCertificate,
} from './certificate-store.js';
export { CLIENT_LIMIT_DEFAULTS, type ClientLimitOptions, type ClientLimits } from './client-limits.js';
export { ClusterRuntime } from './cluster-runtime.js';
export { ConsistentHash, type HashSource } from './consistent-hash-balancer.js';
export { codeOfError, RouterError, type RouterErrorCode, statusForError, UpstreamError } from './errors.js';
export {
  EventLog,
  type EventLogOptions,
  type EventReplay,
  type OperatorEvent,
  type OperatorEventInput,
  type OperatorEventType,
} from './event-log.js';
export { type ForwardingOptions, ForwardingPolicy, parseCidrBlock } from './forwarding-policy.js';
export { type HostPolicy, type HostPolicyPatch, HostPolicyStore, type HostRecord } from './host-policy.js';
export type { HttpsListenerSpec } from './https-listener.js';
export { LeastRequests } from './least-requests-balancer.js';
export { formatAddress, type ListenAddress, parseListenAddress } from './listen-address.js';
export {
  DOTSPLIT_LEVELS,
  type LookupOptions,
  MAX_MOUNT_DEPTH,
  mountDepthOf,
} from './lookup-rules.js';
export {
  type MetricFamily,
  type MetricSample,
  MetricsExporter,
  type RemoteFamilies,
  routerMetricFamilies,
  sumFamilies,
} from './metrics-exporter.js';
export { type EjectionState, type HealthEvent, NodeHealthHooks } from './node-health.js';
export { type EjectionStatus, type NodePool, NodePools } from './node-pool.js';
export { NodeRuntime, type NodeStats, type RuntimeChanges } from './node-runtime.js';
export { type NewNode, type NodePatch, OperatorControl, type ParsedNodeAddress } from './operator-control.js';
export {
  type EjectionInfo,
  OutlierDetector,
  type OutlierEvent,
  type OutlierListener,
  type OutlierOptions,
} from './outlier-detector.js';
export { PeakEwmaP2C } from './p2c-ewma-balancer.js';
export { type ProxyHeaderResult, type ProxySource, parseProxyHeader } from './proxy-protocol.js';
export { RetryBudget, type RetryBudgetOptions, type RetryBudgetStats } from './retry-budget.js';
export { explainRoute, type RouteExplanationView } from './route-explainer.js';
export { Router, type RouterOptions, type RouterStats } from './router.js';
export { RouterOperations, type RouterOperationsOptions } from './router-operations.js';
export { SlowStart } from './slow-start.js';
export { type KeyPage, SortedKeyIndex } from './sorted-key-index.js';
export {
  applyTableChange,
  type TableChange,
  TableFeed,
  type TableObserver,
  tableDigest,
} from './table-replica.js';
export { TunnelRegistry, type TunnelStats } from './tunnel-registry.js';
export { percentDecodeBytes } from './uwsgi-vars.js';
export {
  type HostEntry,
  type LookupResult,
  type NodeProtocol,
  type NodeSource,
  type NodeState,
  STATIC_KEY,
  type UpstreamTarget,
  type VhostNode,
  VhostTable,
} from './vhost-table.js';
export { CLOSE_GOING_AWAY, closeFrame, FrameBoundaryTracker } from './websocket-frame.js';
export { type GoingAwayReason, type TunnelEndReason, WebSocketTunnel } from './websocket-tunnel.js';
export { SmoothWeightedRoundRobin } from './wrr-balancer.js';
