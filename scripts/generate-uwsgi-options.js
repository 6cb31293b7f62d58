// Regenerates packages/switchyard/src/uwsgi-option-names.ts: every option name the real uWSGI binary
// knows with the plugins a router or app ini file typically loads. Development-time only (needs uwsgi):
//   apt-get install uwsgi-core uwsgi-plugin-python3 && node scripts/generate-uwsgi-options.js
// `uwsgi --help` prints one option per line as `    [-x|]--name   description`.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';

const PLUGINS = 'http,corerouter,fastrouter,python3';
const help = spawnSync('uwsgi', ['--plugins', PLUGINS, '--help'], { encoding: 'utf8' });
const version = spawnSync('uwsgi', ['--version'], { encoding: 'utf8' }).stdout.trim();
if (help.error !== undefined || version === '') {
  process.stderr.write('generate-uwsgi-options: uwsgi is not installed\n');
  process.exit(1);
}
const names = new Set();
for (const line of `${help.stdout}${help.stderr}`.split('\n')) {
  const m = /^\s+(?:-[A-Za-z0-9]\|)?--([A-Za-z0-9_][A-Za-z0-9_.-]*)(?:\s|$)/.exec(line);
  if (m !== null) names.add(m[1]);
}
if (names.size < 500) {
  process.stderr.write(`generate-uwsgi-options: only ${names.size} options parsed, refusing to write\n`);
  process.exit(1);
}
const sorted = [...names].sort();
const body = sorted.map((n) => `  '${n}',`).join('\n');
writeFileSync(
  new URL('../packages/switchyard/src/uwsgi-option-names.ts', import.meta.url),
  `/**
 * Every option name of uWSGI ${version} with the plugins ${PLUGINS} loaded (${sorted.length} names),
 * used by the ini reader to tell a uWSGI option Switchyard does not use (a warning) from garbage (an
 * error). Generated, do not edit: \`node scripts/generate-uwsgi-options.js\` parses
 * \`uwsgi --plugins ${PLUGINS} --help\`.
 */
export const UWSGI_OPTION_NAMES: ReadonlySet<string> = new Set([
${body}
]);
`,
);
process.stdout.write(`wrote ${sorted.length} uWSGI option names\n`);
