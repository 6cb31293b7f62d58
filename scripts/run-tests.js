// Runs every test file (packages/*/test and test/) with node:test through tsx.
// Concurrency stays at 2: the CI machine has 2 cores and many tests use real sockets and child processes.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const roots = [...readdirSync('packages').map((p) => join('packages', p, 'test')), 'test'];
const files = roots
  .filter((dir) => existsSync(dir))
  .flatMap((dir) =>
    readdirSync(dir)
      .filter((f) => f.endsWith('.test.ts'))
      .map((f) => join(dir, f)),
  );
const only = process.argv.slice(2);
const selected = only.length > 0 ? files.filter((f) => only.some((o) => f.includes(o))) : files;
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=120000', ...selected],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
