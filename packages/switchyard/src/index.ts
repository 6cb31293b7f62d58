export {
  helpText,
  OPTIONS,
  type ParsedCli,
  parseCli,
  parseStaticNode,
  type StaticNodeConfig,
  type SwitchyardConfig,
} from './cli-options.js';
export { runDemo } from './demo.js';
export { CliError, exitCodeFor } from './errors.js';
export { type CliIo, packageVersion, runRouterCli, waitForSignal } from './router-cli.js';
export { SwitchyardApp, type SwitchyardAppOptions } from './switchyard-app.js';
