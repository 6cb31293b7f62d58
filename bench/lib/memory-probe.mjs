// Preloaded into the Switchyard CLI by the scale benches (`node --expose-gc --import THIS cli.js ...`,
// spawned with an IPC channel). Answers messages from the bench:
//   'memory'     → full GC three times, 1 s pause, one more, then process.memoryUsage() and cpuUsage();
//   'loop-reset' → restarts the event-loop delay histogram (perf_hooks.monitorEventLoopDelay, 1 ms);
//   'loop'       → the histogram since the last reset: max, p99, p99.9, mean (ms) and sample count;
//   'cpu'        → process.cpuUsage() (µs), no GC;
//   'snapshot:F' → writes a heap snapshot to file F (for looking into the bytes per host).
// Adds nothing to the request path; the channel is unref'd so it never keeps the process alive.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { writeHeapSnapshot } from 'node:v8';

if (typeof process.send === 'function') {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  process.channel?.unref();
  process.on('message', (command) => {
    if (command === 'memory') {
      // Full GCs, then a pause so that V8 hands freed pages back to the OS before RSS is read.
      for (let i = 0; i < 3; i++) globalThis.gc?.();
      setTimeout(() => {
        globalThis.gc?.();
        process.send?.({ command, memory: process.memoryUsage(), cpu: process.cpuUsage() });
      }, 1000);
    } else if (typeof command === 'string' && command.startsWith('snapshot:')) {
      process.send?.({ command: 'snapshot', file: writeHeapSnapshot(command.slice('snapshot:'.length)) });
    } else if (command === 'cpu') {
      process.send?.({ command, cpu: process.cpuUsage() });
    } else if (command === 'loop-reset') {
      delay.reset();
      process.send?.({ command });
    } else if (command === 'loop') {
      process.send?.({
        command,
        loop: {
          maxMs: delay.max / 1e6,
          p99Ms: delay.percentile(99) / 1e6,
          p999Ms: delay.percentile(99.9) / 1e6,
          meanMs: delay.mean / 1e6,
          samples: delay.count,
        },
      });
    }
  });
}
