/**
 * `--uid`/`--gid`: /etc/passwd and /etc/group parsing (fixture strings through an injected reader),
 * option validation, and the drop itself with injected process id functions (so the not-root error path
 * is tested whoever runs the suite). The real drop is tested end to end in test/privilege-drop.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { parseCli } from '../src/cli-options.js';
import { exitCodeFor } from '../src/errors.js';
import {
  dropPrivileges,
  type ProcessIds,
  parseGroup,
  parsePasswd,
  resolvePrivileges,
  type SystemFileReader,
} from '../src/privilege-drop.js';
import { SwitchyardApp } from '../src/switchyard-app.js';

const PASSWD = `root:x:0:0:root:/root:/bin/bash
# a comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin

www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
broken line without colons
half:x:notanumber:5:::
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
`;

const GROUP = `root:x:0:
www-data:x:33:
web:x:1500:alice,bob
bad:x:
nogroup:x:65534:
`;

const reader: SystemFileReader = (file) => (file === '/etc/passwd' ? PASSWD : GROUP);

const isCode = (code: string, option: string) => (err: unknown) =>
  (err as { code?: string }).code === code && (err as { option?: string }).option === option;

/** Fake process ids: records every set* call in order; `root` decides whether they are allowed. */
class FakeIds implements ProcessIds {
  calls: string[] = [];
  constructor(
    public uid: number,
    public gid: number,
    private readonly regainable = false,
  ) {}
  getuid(): number {
    return this.uid;
  }
  getgid(): number {
    return this.gid;
  }
  setgroups(groups: number[]): void {
    this.require();
    this.calls.push(`setgroups ${groups.join(',')}`);
  }
  setgid(id: number): void {
    this.require();
    this.calls.push(`setgid ${id}`);
    this.gid = id;
  }
  setuid(id: number): void {
    if (!this.regainable) this.require();
    this.calls.push(`setuid ${id}`);
    this.uid = id;
  }
  private require(): void {
    if (this.uid !== 0) throw Object.assign(new Error('EPERM, Operation not permitted'), { code: 'EPERM' });
  }
}

describe('/etc/passwd and /etc/group parsing', () => {
  test('passwd lines give name, uid and primary gid; comments, blank and malformed lines are skipped', () => {
    assert.deepEqual(parsePasswd(PASSWD), [
      { name: 'root', uid: 0, gid: 0 },
      { name: 'daemon', uid: 1, gid: 1 },
      { name: 'www-data', uid: 33, gid: 33 },
      { name: 'nobody', uid: 65534, gid: 65534 },
    ]);
  });

  test('group lines give name and gid; malformed lines are skipped', () => {
    assert.deepEqual(parseGroup(GROUP), [
      { name: 'root', gid: 0 },
      { name: 'www-data', gid: 33 },
      { name: 'web', gid: 1500 },
      { name: 'nogroup', gid: 65534 },
    ]);
  });
});

describe('--uid and --gid resolution', () => {
  test('no --uid and no --gid means keep the current ids', () => {
    assert.equal(
      resolvePrivileges({}, () => assert.fail('nothing is read')),
      undefined,
    );
  });

  test('a user name resolves to its uid and, without --gid, to its primary group', () => {
    assert.deepEqual(resolvePrivileges({ uid: 'www-data' }, reader), { uid: 33, gid: 33, user: 'www-data' });
  });

  test('a group name resolves through /etc/group and overrides the primary group', () => {
    assert.deepEqual(resolvePrivileges({ uid: 'nobody', gid: 'web' }, reader), {
      uid: 65534,
      gid: 1500,
      user: 'nobody',
    });
  });

  test('numeric ids are taken as they are; a numeric --uid with a passwd entry gives its primary group', () => {
    assert.deepEqual(resolvePrivileges({ uid: '33' }, reader), { uid: 33, gid: 33, user: 'www-data' });
    assert.deepEqual(resolvePrivileges({ uid: '4000', gid: '4001' }, reader), {
      uid: 4000,
      gid: 4001,
      user: undefined,
    });
    assert.deepEqual(resolvePrivileges({ gid: '1500' }, reader), { uid: undefined, gid: 1500, user: undefined });
  });

  test('an unknown user is SY_BAD_OPTION naming --uid', () => {
    assert.throws(() => resolvePrivileges({ uid: 'mallory' }, reader), isCode('SY_BAD_OPTION', '--uid'));
  });

  test('an unknown group is SY_BAD_OPTION naming --gid', () => {
    assert.throws(() => resolvePrivileges({ uid: 'nobody', gid: 'wheel' }, reader), isCode('SY_BAD_OPTION', '--gid'));
  });

  test('a numeric --uid with no passwd entry and no --gid is SY_BAD_OPTION (root group is never kept by accident)', () => {
    assert.throws(() => resolvePrivileges({ uid: '4000' }, reader), isCode('SY_BAD_OPTION', '--uid'));
  });

  test('missing system files read as empty: names are then unknown', () => {
    assert.throws(() => resolvePrivileges({ uid: 'nobody' }, () => ''), isCode('SY_BAD_OPTION', '--uid'));
  });
});

describe('--uid and --gid on the command line and in ini files', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sy-privileges-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('--uid root --gid 0 becomes the config privileges, with no warning', () => {
    const parsed = parseCli(['--uid', 'root', '--gid', '0']);
    assert.equal(parsed.kind, 'run');
    if (parsed.kind !== 'run') return;
    assert.deepEqual(parsed.config.privileges, { uid: 0, gid: 0, user: 'root' });
    assert.deepEqual(parsed.warnings, []);
  });

  test('without --uid and --gid nothing is switched', () => {
    const parsed = parseCli([]);
    assert.equal(parsed.kind === 'run' && parsed.config.privileges, undefined);
  });

  test('a malformed name or an unknown user on the command line is SY_BAD_OPTION naming the option', () => {
    assert.throws(() => parseCli(['--uid', 'bad name!']), isCode('SY_BAD_OPTION', '--uid'));
    assert.throws(() => parseCli(['--gid', '']), isCode('SY_BAD_OPTION', '--gid'));
    assert.throws(() => parseCli(['--uid', 'no-such-user-switchyard']), isCode('SY_BAD_OPTION', '--uid'));
    assert.throws(
      () => parseCli(['--uid', '0', '--gid', 'no-such-group-switchyard']),
      isCode('SY_BAD_OPTION', '--gid'),
    );
  });

  test('uid and gid in a uWSGI ini file are real options now (no "ignored" warning)', () => {
    const file = path.join(dir, 'router.ini');
    writeFileSync(file, '[uwsgi]\nuid = root\ngid = root\n');
    const parsed = parseCli(['--ini', file]);
    assert.equal(parsed.kind, 'run');
    if (parsed.kind !== 'run') return;
    assert.deepEqual(parsed.config.privileges, { uid: 0, gid: 0, user: 'root' });
    assert.deepEqual(parsed.warnings, []);
    writeFileSync(file, '[uwsgi]\nuid = no-such-user-switchyard\n');
    assert.throws(() => parseCli(['--ini', file]), isCode('SY_BAD_OPTION', '--uid'));
  });
});

describe('dropping privileges', () => {
  test('root switches supplementary groups, then gid, then uid', () => {
    const ids = new FakeIds(0, 0);
    assert.deepEqual(dropPrivileges({ uid: 65534, gid: 65534, user: 'nobody' }, ids), { uid: 65534, gid: 65534 });
    assert.deepEqual(ids.calls, ['setgroups 65534', 'setgid 65534', 'setuid 65534']);
  });

  test('--gid alone switches the groups and keeps the uid', () => {
    const ids = new FakeIds(0, 0);
    assert.deepEqual(dropPrivileges({ uid: undefined, gid: 1500, user: undefined }, ids), { uid: 0, gid: 1500 });
    assert.deepEqual(ids.calls, ['setgroups 1500', 'setgid 1500']);
  });

  test('a process that is not root asking for other ids fails with SY_PRIVILEGE_DROP_FAILED (exit 2) and switches nothing', () => {
    const ids = new FakeIds(1000, 1000);
    let caught: unknown;
    assert.throws(
      () => {
        try {
          dropPrivileges({ uid: 65534, gid: 65534, user: 'nobody' }, ids);
        } catch (error) {
          caught = error;
          throw error;
        }
      },
      isCode('SY_PRIVILEGE_DROP_FAILED', '--uid'),
    );
    assert.equal(exitCodeFor(caught), 2);
    assert.deepEqual(ids.calls, []);
    assert.throws(
      () => dropPrivileges({ uid: 1000, gid: 50, user: undefined }, ids),
      isCode('SY_PRIVILEGE_DROP_FAILED', '--gid'),
    );
  });

  test('a process already running with the asked ids keeps them (a worker restarted by an unprivileged primary)', () => {
    const ids = new FakeIds(65534, 65534);
    assert.deepEqual(dropPrivileges({ uid: 65534, gid: 65534, user: 'nobody' }, ids), { uid: 65534, gid: 65534 });
    assert.deepEqual(ids.calls, []);
  });

  test('no --uid/--gid leaves the ids alone', () => {
    const ids = new FakeIds(0, 0);
    assert.deepEqual(dropPrivileges(undefined, ids), { uid: 0, gid: 0 });
    assert.deepEqual(ids.calls, []);
  });

  test('root that could be regained after the switch is SY_PRIVILEGE_DROP_FAILED', () => {
    const ids = new FakeIds(0, 0, true);
    assert.throws(
      () => dropPrivileges({ uid: 65534, gid: 65534, user: 'nobody' }, ids),
      isCode('SY_PRIVILEGE_DROP_FAILED', '--uid'),
    );
  });

  test('an app that cannot switch ids fails to start with SY_PRIVILEGE_DROP_FAILED and closes what it bound', async () => {
    const parsed = parseCli([
      '--http',
      '127.0.0.1:0',
      '--subscription-server',
      '127.0.0.1:0',
      '--admin',
      '127.0.0.1:0',
      '--uid',
      '0',
      '--gid',
      '0',
    ]);
    assert.equal(parsed.kind, 'run');
    if (parsed.kind !== 'run') return;
    const listening = (): number =>
      process.getActiveResourcesInfo().filter((r) => r === 'TCPServerWrap' || r === 'UDPWRAP').length;
    const before = listening();
    const app = new SwitchyardApp({
      config: parsed.config,
      logger: pino({ level: 'silent' }),
      processIds: new FakeIds(1000, 1000),
    });
    await assert.rejects(app.start(), isCode('SY_PRIVILEGE_DROP_FAILED', '--uid'));
    assert.equal(app.adminAddress(), undefined);
    assert.deepEqual(app.subscriptionAddresses(), []);
    // A closed server's handle goes at the next loop turn: bounded wait, then assert.
    for (let i = 0; i < 100 && listening() !== before; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(listening(), before);
  });
});
