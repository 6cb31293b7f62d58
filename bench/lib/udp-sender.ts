/**
 * A UDP subscription sender, run as its own process by lib/subscriptions.ts `runSender` (argument: the
 * JSON plan). One socket, connected to 127.0.0.1:port; packets are encoded before the clock starts.
 *  - burst: `count` datagrams back to back, no pacing: `send()` without a callback in a loop (libuv
 *    writes each one at once when the socket is writable), then one with a callback to wait for the end;
 *  - paced: `rate` datagrams per second for `seconds`, cycling over `hosts` hosts, in batches topped up
 *    on every event-loop turn.
 * Prints one JSON line: {"sent", "ms", "pps"}.
 */
import { createSocket } from 'node:dgram';
import { encodeSubscription } from '@switchyard/protocol';

interface Spec {
  readonly mode: 'burst' | 'paced';
  readonly port: number;
  readonly domain: string;
  /** Node address of host i: addresses[i % addresses.length]. */
  readonly addresses: readonly string[];
  readonly fields?: Record<string, string>;
  /** Default 'subscribe'. */
  readonly command?: 'subscribe' | 'unsubscribe';
  readonly first: number;
  readonly count?: number;
  readonly hosts?: number;
  readonly rate?: number;
  readonly seconds?: number;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as Spec;
const extra = Object.entries(spec.fields ?? {});
const packet = (i: number) =>
  encodeSubscription(spec.command ?? 'subscribe', [
    ['key', `h${i}.${spec.domain}`],
    ['address', spec.addresses[i % spec.addresses.length]!],
    ...extra,
  ]);

const socket = createSocket({ type: 'udp4', sendBufferSize: 4 * 1024 * 1024 });
await new Promise<void>((resolve) => socket.connect(spec.port, '127.0.0.1', () => resolve()));

let sent = 0;
let ms = 0;
if (spec.mode === 'burst') {
  const count = spec.count ?? 0;
  const packets = Array.from({ length: count }, (_, i) => packet(spec.first + i));
  const t0 = performance.now();
  for (let i = 0; i < count - 1; i++) socket.send(packets[i]!);
  // The last one with a callback: libuv completes sends in order, so this resolves after all of them.
  await new Promise<void>((resolve) => socket.send(packets[count - 1]!, () => resolve()));
  ms = performance.now() - t0;
  sent = count;
} else {
  const hosts = spec.hosts ?? 1;
  const rate = spec.rate ?? 1000;
  const total = Math.round(rate * (spec.seconds ?? 1));
  const packets = Array.from({ length: hosts }, (_, i) => packet(spec.first + i));
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - t0) * rate) / 1000));
      // At most 2 ms worth per turn, so a stall is not followed by a burst.
      const batch = Math.min(due - sent, Math.ceil(rate / 500));
      for (let i = 0; i < batch; i++) {
        const last = sent + i === total - 1;
        socket.send(packets[(sent + i) % hosts]!, last ? () => resolve() : undefined);
      }
      sent += Math.max(0, batch);
      if (sent < total) setImmediate(tick);
    };
    tick();
  });
  ms = performance.now() - t0;
}
socket.close();
process.stdout.write(`${JSON.stringify({ sent, ms, pps: (sent * 1000) / ms })}\n`);
