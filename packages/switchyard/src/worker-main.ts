/**
 * Entry point of a `--workers` HTTP worker process (forked by worker-cluster.ts with the primary's own
 * router arguments). Exit codes: 0 after a clean close, 1 after SY_WORKER_DESYNC or a startup failure
 * (which the worker has already reported to the primary).
 */
import process from 'node:process';
import { pino } from 'pino';
import { parseCli } from './cli-options.js';
import { RouterWorker } from './router-worker.js';
import { isPrimaryMessage, type PrimaryMessage, type WorkerMessage } from './worker-messages.js';

async function main(): Promise<number> {
  const parsed = parseCli(process.argv.slice(2));
  if (parsed.kind !== 'run') return 1;
  const logger = pino({
    level: parsed.config.logLevel,
    base: { pid: process.pid, worker: Number(process.env.SWITCHYARD_WORKER_ID ?? 0) },
  });
  const worker = new RouterWorker({
    config: parsed.config,
    logger,
    channel: {
      send: (message: WorkerMessage) => {
        if (process.connected) process.send?.(message);
      },
      onMessage: (listener: (message: PrimaryMessage) => void) =>
        process.on('message', (message: unknown) => {
          if (isPrimaryMessage(message)) listener(message);
        }),
      onDisconnect: (listener: () => void) => process.on('disconnect', listener),
    },
  });
  const closed = new Promise<void>((resolve) => worker.onClosed(resolve));
  // A terminal's Ctrl-C reaches every process of the group: close as the primary does.
  const onSignal = (): void => void worker.close();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await worker.start();
  } catch {
    return 1;
  }
  await closed;
  return worker.exitCode;
}

const code = await main();
// Everything is closed and flushed (pino writes stdout synchronously): leave now rather than wait on a
// stray handle.
process.exit(code);
