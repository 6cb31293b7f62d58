import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { ROOT, startApp, waitFor } from './support.js';

const BACKEND = path.join(ROOT, 'test/fixtures/churn-backend.mjs');

interface Backend {
  readonly name: string;
  readonly child: ChildProcessWithoutNullStreams;
  readonly exited: Promise<void>;
}

function startBackend(server: string, key: string, name: string): Promise<Backend> {
  const child = spawn(process.execPath, [BACKEND, server, key, name], { stdio: ['pipe', 'pipe', 'pipe'], cwd: ROOT });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    child.stdout.once('data', () => resolve({ name, child, exited }));
    child.once('error', reject);
  });
}

interface LoadResult {
  sent: number;
  ok: number;
  non2xx: Map<number, number>;
  transportErrors: number;
  mismatches: number;
  latencies: number[];
}

/** Sends `total` requests over keep-alive connections (concurrency `concurrency`), 80% GET / 20% POST. */
async function load(port: number, host: string, total: number, concurrency: number, result: LoadResult): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency, timeout: 4000 });
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total) {
      const id = `r${next++}`;
      const post = next % 5 === 0;
      const started = performance.now();
      await new Promise<void>((resolve) => {
        const req = http.request(
          {
            host: '127.0.0.1',
            port,
            path: `/item/${id}`,
            method: post ? 'POST' : 'GET',
            agent,
            headers: { host, 'x-request-id': id },
          },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (text += c));
            res.on('end', () => {
              result.latencies.push(performance.now() - started);
              if (res.statusCode === 200) {
                const reply = JSON.parse(text) as { id: string; body: string };
                if (reply.id !== id || (post && reply.body !== id)) result.mismatches++;
                else result.ok++;
              } else {
                result.non2xx.set(res.statusCode ?? 0, (result.non2xx.get(res.statusCode ?? 0) ?? 0) + 1);
              }
              resolve();
            });
            res.on('error', () => {
              result.transportErrors++;
              resolve();
            });
          },
        );
        req.on('error', () => {
          result.transportErrors++;
          resolve();
        });
        result.sent++;
        req.end(post ? id : undefined);
      });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  agent.destroy();
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

describe('churn: nodes join, drain and leave under load', () => {
  const backends = new Set<Backend>();
  after(async () => {
    for (const b of backends) b.child.kill('SIGKILL');
  });

  test('loses no request out of 20,000 over keep-alive while nodes join, drain and leave', {
    timeout: 120_000,
  }, async () => {
    const { app, httpPort, subscriptionPort } = await startApp(['--log-level', 'silent']);
    const server = `127.0.0.1:${subscriptionPort}`;
    const key = 'churn.test';
    let serial = 0;
    const live: Backend[] = [];
    for (let i = 0; i < 4; i++) {
      const b = await startBackend(server, key, `n${serial++}`);
      live.push(b);
      backends.add(b);
    }
    await waitFor(() => ((app.registry.get(key)?.length ?? 0) === 4 ? true : undefined), 10_000, 'four nodes');
    const result: LoadResult = { sent: 0, ok: 0, non2xx: new Map(), transportErrors: 0, mismatches: 0, latencies: [] };
    let churning = true;
    let joins = 0;
    let leaves = 0;
    const churn = (async () => {
      while (churning) {
        await new Promise((resolve) => setTimeout(resolve, 400));
        if (!churning) break;
        // Graceful leave of the oldest node, then a fresh node joins.
        const leaving = live.shift()!;
        leaving.child.kill('SIGTERM');
        leaves++;
        const fresh = await startBackend(server, key, `n${serial++}`);
        backends.add(fresh);
        live.push(fresh);
        joins++;
        leaving.exited.then(() => backends.delete(leaving));
      }
    })();
    await load(httpPort, key, 20_000, 32, result);
    churning = false;
    await churn;
    const rss = process.memoryUsage().rss;
    console.log(
      `churn: ${result.sent} requests, ${result.ok} ok, non-2xx ${JSON.stringify([...result.non2xx])}, transport errors ${result.transportErrors}, mismatches ${result.mismatches}, joins ${joins}, leaves ${leaves}, p50 ${percentile(result.latencies, 50).toFixed(2)} ms, p99 ${percentile(result.latencies, 99).toFixed(2)} ms, test process rss ${(rss / 1048576).toFixed(0)} MiB`,
    );
    assert.ok(joins >= 3, `only ${joins} joins happened`);
    assert.equal(result.sent, 20_000);
    assert.equal(result.mismatches, 0);
    assert.equal(result.transportErrors, 0);
    assert.deepEqual([...result.non2xx], []);
    assert.equal(result.ok, 20_000);
    for (const b of live) b.child.kill('SIGTERM');
    await Promise.all(live.map((b) => b.exited));
    await app.close();
  });

  test('counts what an abrupt SIGKILL of a node costs: only requests in flight on it, never a mismatch', {
    timeout: 60_000,
  }, async () => {
    const { app, httpPort, subscriptionPort } = await startApp(['--log-level', 'silent']);
    const server = `127.0.0.1:${subscriptionPort}`;
    const key = 'kill.test';
    const nodes: Backend[] = [];
    for (let i = 0; i < 3; i++) {
      const b = await startBackend(server, key, `k${i}`);
      nodes.push(b);
      backends.add(b);
    }
    await waitFor(() => ((app.registry.get(key)?.length ?? 0) === 3 ? true : undefined), 10_000, 'three nodes');
    const result: LoadResult = { sent: 0, ok: 0, non2xx: new Map(), transportErrors: 0, mismatches: 0, latencies: [] };
    const killer = setTimeout(() => nodes[0]!.child.kill('SIGKILL'), 300);
    await load(httpPort, key, 5_000, 16, result);
    clearTimeout(killer);
    const failed = [...result.non2xx.values()].reduce((a, b) => a + b, 0) + result.transportErrors;
    console.log(
      `sigkill: ${result.sent} requests, ${result.ok} ok, failed ${failed} (${JSON.stringify([...result.non2xx])}, transport ${result.transportErrors}), mismatches ${result.mismatches}`,
    );
    assert.equal(result.mismatches, 0);
    // At most the requests in flight on the killed node (16 connections) can fail; GETs are retried.
    assert.ok(failed <= 16, `${failed} failures`);
    for (const b of nodes) b.child.kill('SIGTERM');
    await Promise.all(nodes.slice(1).map((b) => b.exited));
    await app.close();
  });
});
