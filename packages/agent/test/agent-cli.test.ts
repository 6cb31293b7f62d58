import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { decodeSubscription, type SubscriptionPacket } from '@switchyard/protocol';
import { AGENT_HELP, type AgentError, parseAgentArgs, runAgentCli, splitSubscribeTo } from '../src/index.js';

class Capture {
  text = '';
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
  get lines(): string[] {
    return this.text.split('\n').filter((l) => l.length > 0);
  }
}

/** Loopback UDP listener collecting decoded subscription packets. */
async function listen(): Promise<{ socket: Socket; port: number; packets: SubscriptionPacket[] }> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  const packets: SubscriptionPacket[] = [];
  socket.on('message', (msg) => {
    const decoded = decodeSubscription(msg);
    assert.ok(decoded.ok);
    packets.push(decoded.value);
  });
  return { socket, port: socket.address().port, packets };
}

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('splitSubscribeTo', () => {
  const good: Array<[string, string, string, number | undefined]> = [
    ['127.0.0.1:2626:api.example.com', '127.0.0.1:2626', 'api.example.com', undefined],
    ['127.0.0.1:2626:api.example.com:8080', '127.0.0.1:2626', 'api.example.com:8080', undefined],
    ['[::1]:2626:app.test', '[::1]:2626', 'app.test', undefined],
    ['[fd00::10]:2626:app.test:8443', '[fd00::10]:2626', 'app.test:8443', undefined],
    ['router:2626:demo.localhost', 'router:2626', 'demo.localhost', undefined],
    ['10.0.0.1:2626:app.test,5', '10.0.0.1:2626', 'app.test', 5],
  ];
  for (const [spec, server, key, modifier1] of good) {
    it(`splits ${spec} into server ${server} and key ${key}`, () => {
      assert.deepEqual(splitSubscribeTo(spec), { server, key, modifier1 });
    });
  }

  const bad = [
    '127.0.0.1:2626',
    '127.0.0.1',
    '127.0.0.1:2626:',
    '[::1]:2626',
    '[::1]2626:app.test',
    '::1:2626:app.test',
    'host:port:app.test',
    'host:99999:app.test',
    'host:2626:app.test,300',
    'host:2626:app.test,5,SHA1:/tmp/key.pem',
  ];
  for (const spec of bad) {
    it(`rejects ${spec} with SY_BAD_OPTION for --subscribe-to`, () => {
      assert.throws(
        () => splitSubscribeTo(spec),
        (e: AgentError & { option: string }) => e.code === 'SY_BAD_OPTION' && e.option === '--subscribe-to',
      );
    });
  }
});

describe('parseAgentArgs', () => {
  it('parses every option, repeats --subscribe-to and ignores a leading "agent" word', () => {
    const values = parseAgentArgs([
      'agent',
      '--subscribe-to',
      '127.0.0.1:2626:a.test',
      '--subscribe-to',
      '[::1]:2626:b.test:8080',
      '--address',
      '127.0.0.1:3000',
      '--weight',
      '3',
      '--proto',
      'http',
      '--interval',
      '2.5',
    ]);
    assert.deepEqual(values['subscribe-to'], ['127.0.0.1:2626:a.test', '[::1]:2626:b.test:8080']);
    assert.equal(values.weight, 3);
    assert.equal(values.proto, 'http');
    assert.equal(values.interval, 2.5);
  });
});

describe('runAgentCli', () => {
  const ok = ['--subscribe-to', '127.0.0.1:2626:app.test', '--address', '127.0.0.1:3000'];
  const usageErrors: Array<[string, string[], string]> = [
    ['a missing --subscribe-to', ['--address', '127.0.0.1:3000'], '--subscribe-to'],
    ['a missing --address', ['--subscribe-to', '127.0.0.1:2626:app.test'], '--address'],
    ['--address without a value', [...ok.slice(0, 2), '--address'], '--address'],
    ['an --address without a port', [...ok.slice(0, 2), '--address', '127.0.0.1'], '--address'],
    ['a --subscribe-to without a key', ['--subscribe-to', '127.0.0.1:2626', ...ok.slice(2)], '--subscribe-to'],
    ['a --subscribe-to with a bad key', ['--subscribe-to', '127.0.0.1:2626:a b', ...ok.slice(2)], '--subscribe-to'],
    ['a repeated identical --subscribe-to', [...ok, ...ok.slice(0, 2)], '--subscribe-to'],
    ['a non-numeric --weight', [...ok, '--weight', 'heavy'], '--weight'],
    ['a --weight above 65535', [...ok, '--weight', '70000'], '--weight'],
    ['an unknown --proto', [...ok, '--proto', 'h2'], '--proto'],
    ['an --interval of 0', [...ok, '--interval', '0'], '--interval'],
    ['an unknown option', [...ok, '--colour', 'red'], '--colour'],
    ['a positional argument', [...ok, 'extra'], 'extra'],
  ];
  for (const [what, argv, flag] of usageErrors) {
    it(`returns 2 with one stderr line naming ${flag} for ${what}`, async () => {
      const stdout = new Capture();
      const stderr = new Capture();
      const code = await runAgentCli(argv, { stdout, stderr });
      assert.equal(code, 2);
      assert.equal(stderr.lines.length, 1);
      assert.ok(stderr.lines[0]!.includes(flag), `stderr should name ${flag}: ${stderr.text}`);
      assert.equal(stdout.text, '');
    });
  }

  it('--help lists every option with its default and returns 0', async () => {
    const stdout = new Capture();
    const stderr = new Capture();
    assert.equal(await runAgentCli(['--help'], { stdout, stderr }), 0);
    assert.equal(stdout.text, AGENT_HELP);
    for (const flag of ['--subscribe-to', '--address', '--weight', '--proto', '--interval', '--help']) {
      assert.ok(stdout.text.includes(flag), `help lacks ${flag}`);
    }
    for (const d of ['Default: 1', 'Default: uwsgi', 'Default: 10'])
      assert.ok(stdout.text.includes(d), `help lacks ${d}`);
  });

  it('announces to every --subscribe-to until stopped, then sends one unsubscribe to each and returns 0', async () => {
    const a = await listen();
    const b = await listen();
    const stop = new AbortController();
    const stdout = new Capture();
    const stderr = new Capture();
    const run = runAgentCli(
      [
        'agent',
        '--subscribe-to',
        `127.0.0.1:${a.port}:app.test`,
        '--subscribe-to',
        `127.0.0.1:${b.port}:api.example.com:8080`,
        '--address',
        '127.0.0.1:3000',
        '--proto',
        'http',
        '--weight',
        '4',
        '--interval',
        '0.05',
      ],
      { stdout, stderr, signal: stop.signal },
    );
    try {
      await until(() => a.packets.length >= 2 && b.packets.length >= 2, 3000, 'a refresh on both servers');
      stop.abort();
      assert.equal(await run, 0);
      assert.equal(stderr.text, '');
      const unsubscribed = (rx: { packets: SubscriptionPacket[] }) =>
        rx.packets.some((p) => p.command === 'unsubscribe');
      await until(() => unsubscribed(a) && unsubscribed(b), 1000, 'the unsubscribes');
      await new Promise((resolve) => setTimeout(resolve, 100)); // nothing may follow the unsubscribe
      for (const [rx, key] of [
        [a, 'app.test'],
        [b, 'api.example.com:8080'],
      ] as const) {
        assert.ok(rx.packets.every((p) => p.fields.get('key') === key));
        assert.equal(rx.packets[0]!.fields.get('proto'), 'http');
        assert.equal(rx.packets[0]!.fields.get('weight'), '4');
        assert.equal(rx.packets.filter((p) => p.command === 'unsubscribe').length, 1);
        assert.equal(rx.packets.at(-1)!.command, 'unsubscribe');
      }
    } finally {
      stop.abort();
      await run;
      a.socket.close();
      b.socket.close();
    }
  });

  it('stops on a real SIGTERM, unsubscribes and exits 0', async () => {
    const rx = await listen();
    const cli = fileURLToPath(new URL('../src/agent-cli.ts', import.meta.url));
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `import { runAgentCli } from ${JSON.stringify(cli)}; process.exitCode = await runAgentCli(process.argv.slice(1));`,
        '--',
        '--subscribe-to',
        `127.0.0.1:${rx.port}:app.test`,
        '--address',
        '127.0.0.1:3000',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await until(() => rx.packets.length >= 1, 10_000, 'the first subscribe from the child');
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
      await until(() => rx.packets.length >= 2, 1000, 'the unsubscribe');
      assert.deepEqual(
        rx.packets.map((p) => p.command),
        ['subscribe', 'unsubscribe'],
      );
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      rx.socket.close();
    }
  });
});
