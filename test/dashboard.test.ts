/**
 * The dashboard in a real headless Chromium (playwright-core driving Debian's chromium): a node appears
 * when its subscription packet arrives, a click drains it, and the router stops sending it traffic while
 * its announcements keep coming. Skipped only when chromium is absent and CI is not set.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { encodeSubscription } from '@switchyard/protocol';
import { type BrowserContext, chromium } from 'playwright-core';
import { get, startApp, waitFor } from './support.js';

const CHROMIUM = '/usr/bin/chromium';
const SKIP = !existsSync(CHROMIUM) && process.env.CI !== 'true' ? 'chromium is not installed' : false;

test('the dashboard shows a subscribed node, drains it with a click, and the router stops using it', {
  skip: SKIP,
  timeout: 60_000,
}, async () => {
  let hits = 0;
  const backend = http.createServer((_req, res) => {
    hits++;
    res.end('dash');
  });
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  const backendAddress = `127.0.0.1:${(backend.address() as AddressInfo).port}`;
  const { app, httpPort, subscriptionPort, adminPort } = await startApp();
  const udp = dgram.createSocket('udp4');
  const announce = () =>
    new Promise<void>((resolve, reject) =>
      udp.send(
        encodeSubscription('subscribe', [
          ['key', 'dash.test'],
          ['address', backendAddress],
          ['proto', 'http'],
        ]),
        subscriptionPort,
        '127.0.0.1',
        (error) => (error ? reject(error) : resolve()),
      ),
    );
  // A fresh profile (playwright passes it as --user-data-dir).
  const profile = mkdtempSync(path.join(os.tmpdir(), 'sy-chromium-'));
  let browser: BrowserContext | undefined;
  try {
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      timeout: 30_000,
    });
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(String(error)));
    await page.goto(`http://127.0.0.1:${adminPort}/`);
    await page.waitForSelector('#events-state:text("live")', { timeout: 10_000 });

    await announce();
    const node = page.locator(`[data-node="dash.test|${backendAddress}"]`);
    await node.waitFor({ timeout: 10_000 });
    assert.equal(await node.getAttribute('data-state'), 'active');
    assert.equal((await get(httpPort, 'dash.test')).text, 'dash');
    await page.locator('#events li[data-type="added"]').first().waitFor({ timeout: 5_000 });

    await node.locator('button[data-action="drain"]').click();
    await page.locator(`[data-node="dash.test|${backendAddress}"][data-state="draining"]`).waitFor({ timeout: 10_000 });
    const before = hits;
    // The node keeps announcing: the operator's drain holds.
    await announce();
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (let i = 0; i < 3; i++) {
      const reply = await get(httpPort, 'dash.test');
      assert.equal(reply.status, 503);
      assert.equal(reply.headers['x-switchyard-error'], 'SY_NO_LIVE_NODE');
    }
    assert.equal(hits, before);

    await page.locator(`[data-node="dash.test|${backendAddress}"] button[data-action="undrain"]`).click();
    await waitFor(async () => ((await get(httpPort, 'dash.test')).status === 200 ? true : undefined), 5_000, 'undrain');
    assert.deepEqual(errors, []);
  } finally {
    await browser?.close();
    udp.close();
    await app.close();
    backend.close();
    rmSync(profile, { recursive: true, force: true });
  }
});
