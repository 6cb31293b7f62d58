export { AdminServer, type AdminServerOptions } from './admin-server.js';
export { type Balancer, type BalancerContext, SmoothWeightedRoundRobin } from './balancer.js';
export { codeOfError, RouterError, type RouterErrorCode, statusForError, UpstreamError } from './errors.js';
export { formatAddress, type ListenAddress, parseListenAddress } from './listen-address.js';
export {
  DOTSPLIT_LEVELS,
  type LookupOptions,
  MAX_MOUNT_DEPTH,
  mountDepthOf,
} from './lookup-rules.js';
export { NodeRuntime, type NodeStats } from './node-runtime.js';
export { Router, type RouterOptions, type RouterStats } from './router.js';
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
