/**
 * `switchyard [options]`: parse options, start the composition, stop it on SIGINT/SIGTERM.
 */
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { helpText, parseCli } from './cli-options.js';
import { exitCodeFor } from './errors.js';
import { SwitchyardApp } from './switchyard-app.js';

export interface CliIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** Runs until a signal; resolves with the process exit code. */
export async function runRouterCli(argv: readonly string[], io: CliIo = process): Promise<number> {
  let parsed: ReturnType<typeof parseCli>;
  try {
    parsed = parseCli(argv);
  } catch (error) {
    io.stderr.write(`switchyard: ${(error as Error).message}\n`);
    return exitCodeFor(error);
  }
  if (parsed.kind === 'help') {
    io.stdout.write(helpText());
    return 0;
  }
  if (parsed.kind === 'version') {
    io.stdout.write(`switchyard ${packageVersion()}\n`);
    return 0;
  }
  for (const warning of parsed.warnings ?? []) io.stderr.write(`switchyard: warning: ${warning}\n`);
  const logger = pino({ level: parsed.config.logLevel, base: { pid: process.pid } });
  const app = new SwitchyardApp({ config: parsed.config, logger, workerArgv: argv });
  try {
    await app.start();
  } catch (error) {
    io.stderr.write(`switchyard: ${(error as Error).message}\n`);
    return exitCodeFor(error);
  }
  return waitForSignal(app);
}

/** Resolves 0 once SIGINT or SIGTERM has stopped `app` (a second signal exits at once). */
export function waitForSignal(app: { close(): Promise<void> }): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (): void => {
      if (stopping) process.exit(1);
      stopping = true;
      app.close().then(
        () => {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          resolve(0);
        },
        () => resolve(1),
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
