export {
  AGENT_HELP,
  type AgentCliIo,
  buildAnnounceOptions,
  parseAgentArgs,
  runAgentCli,
  type SubscribeTarget,
  splitSubscribeTo,
} from './agent-cli.js';
export {
  type AgentHandle,
  type AnnounceOptions,
  announce,
  DEFAULT_INTERVAL_MS,
  DEFAULT_WEIGHT,
  type Endpoint,
  MAX_SUBSCRIPTION_DATAGRAM,
  parseEndpoint,
  type ResolvedAnnounceOptions,
  resolveAnnounceOptions,
} from './announcer.js';
export {
  AgentClosedError,
  AgentError,
  type AgentErrorCode,
  BadOptionError,
  exitCodeFor,
  SendFailedError,
} from './errors.js';
export {
  KID,
  type ResolvedSigning,
  resolveSigning,
  SIGNATURE_BYTES,
  type SigningAlgorithm,
  type SigningOptions,
  signSubscription,
} from './subscription-signer.js';
