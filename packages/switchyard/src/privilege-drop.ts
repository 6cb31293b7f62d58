/**
 * `--uid USER` / `--gid GROUP` (uWSGI's options): the ids a router started as root (to bind :80/:443)
 * runs as once everything is bound.
 *
 * Resolution happens once, at config parse: names are looked up in /etc/passwd and /etc/group (read
 * through an injectable reader), numeric ids are taken as they are. An unknown name is SY_BAD_OPTION
 * naming `--uid` or `--gid`. `--uid` without `--gid` takes that user's primary group (what uWSGI ends
 * up with through initgroups); a numeric `--uid` with no /etc/passwd entry then needs `--gid` (never
 * keep root's group by accident).
 *
 * The drop (`dropPrivileges`) runs after every listener is bound: setgroups([gid]) → setgid → setuid.
 * Supplementary groups become exactly the target gid (not the user's /etc/group memberships as
 * initgroups would give): the router needs no other group, and a stale membership cannot grant access.
 * A process that is not root and asked for ids other than its own fails with SY_PRIVILEGE_DROP_FAILED
 * (exit 2): it never silently keeps running with ids other than the ones asked for. Asking for the
 * ids it already has is a no-op (a worker restarted by an already unprivileged primary).
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { CliError, PrivilegeError } from './errors.js';

/** The ids to switch to; undefined = keep that id. */
export interface PrivilegeConfig {
  readonly uid: number | undefined;
  readonly gid: number | undefined;
  /** The user name (for logs), when --uid named one or its id has an /etc/passwd entry. */
  readonly user: string | undefined;
}

interface PrivilegeOptionSpec {
  readonly type: 'string';
  readonly help: string;
  readonly defaultText: string;
  readonly value: string;
}

export const PRIVILEGE_OPTIONS: Readonly<Record<string, PrivilegeOptionSpec>> = {
  uid: {
    type: 'string',
    value: 'USER',
    help: 'once everything is bound, run as this user (name or id; needs root); its primary group unless --gid',
    defaultText: 'keep the current user',
  },
  gid: {
    type: 'string',
    value: 'GROUP',
    help: 'once everything is bound, run as this group (name or id; needs root); the only supplementary group',
    defaultText: "--uid's primary group",
  },
};

/** A user or group: a name (letters, digits, `._-`, a trailing `$`) or a numeric id below 2^32 - 1. */
function principal(option: string) {
  return z
    .string()
    .regex(/^(\d{1,10}|[A-Za-z_][A-Za-z0-9_.-]*\$?)$/, `${option} takes a name or a numeric id`)
    .refine((v) => !/^\d+$/.test(v) || Number(v) < 0xffff_ffff, `${option} takes an id below 4294967295`)
    .optional();
}

export const PRIVILEGE_SCHEMA = {
  uid: principal('--uid'),
  gid: principal('--gid'),
};

export interface PasswdEntry {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

export interface GroupEntry {
  readonly name: string;
  readonly gid: number;
}

/** /etc/passwd lines `name:pw:uid:gid:gecos:home:shell`; comments, blank and malformed lines are skipped. */
export function parsePasswd(text: string): PasswdEntry[] {
  const entries: PasswdEntry[] = [];
  for (const fields of colonLines(text)) {
    const [name, , uid, gid] = fields;
    if (fields.length < 4 || !name || !isId(uid) || !isId(gid)) continue;
    entries.push({ name, uid: Number(uid), gid: Number(gid) });
  }
  return entries;
}

/** /etc/group lines `name:pw:gid:members`; comments, blank and malformed lines are skipped. */
export function parseGroup(text: string): GroupEntry[] {
  const entries: GroupEntry[] = [];
  for (const fields of colonLines(text)) {
    const [name, , gid] = fields;
    if (fields.length < 3 || !name || !isId(gid)) continue;
    entries.push({ name, gid: Number(gid) });
  }
  return entries;
}

function colonLines(text: string): string[][] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => line.split(':'));
}

function isId(text: string | undefined): text is string {
  return text !== undefined && /^\d{1,10}$/.test(text);
}

/** Reads a system file (/etc/passwd, /etc/group); a missing file reads as empty. */
export type SystemFileReader = (path: '/etc/passwd' | '/etc/group') => string;

export function readSystemFile(path: '/etc/passwd' | '/etc/group'): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Resolves `--uid`/`--gid` values to ids. Throws CliError (SY_BAD_OPTION) naming the option. */
export function resolvePrivileges(
  values: { readonly uid?: string | undefined; readonly gid?: string | undefined },
  read: SystemFileReader = readSystemFile,
): PrivilegeConfig | undefined {
  if (values.uid === undefined && values.gid === undefined) return undefined;
  let uid: number | undefined;
  let gid: number | undefined;
  let user: string | undefined;
  let primaryGid: number | undefined;
  if (values.uid !== undefined) {
    const users = parsePasswd(read('/etc/passwd'));
    const numeric = /^\d+$/.test(values.uid);
    const entry = numeric ? users.find((u) => u.uid === Number(values.uid)) : users.find((u) => u.name === values.uid);
    if (entry === undefined && !numeric) {
      throw new CliError(`--uid ${values.uid}: no such user in /etc/passwd`, '--uid');
    }
    uid = entry?.uid ?? Number(values.uid);
    user = entry?.name;
    primaryGid = entry?.gid;
  }
  if (values.gid !== undefined) {
    if (/^\d+$/.test(values.gid)) gid = Number(values.gid);
    else {
      const entry = parseGroup(read('/etc/group')).find((g) => g.name === values.gid);
      if (entry === undefined) throw new CliError(`--gid ${values.gid}: no such group in /etc/group`, '--gid');
      gid = entry.gid;
    }
  } else if (uid !== undefined) {
    if (primaryGid === undefined) {
      throw new CliError(`--uid ${values.uid} has no /etc/passwd entry to take a group from: add --gid`, '--uid');
    }
    gid = primaryGid;
  }
  return { uid, gid, user };
}

/** The process functions the drop uses (node:process; injected in tests). */
export interface ProcessIds {
  getuid(): number;
  getgid(): number;
  setgroups(groups: number[]): void;
  setgid(id: number): void;
  setuid(id: number): void;
}

/**
 * Switches to `target` (setgroups → setgid → setuid) and returns the ids now in effect. Throws
 * PrivilegeError (SY_PRIVILEGE_DROP_FAILED, naming --uid or --gid) when not root and asked for other
 * ids, when a call fails, or when root could be regained afterwards.
 */
export function dropPrivileges(
  target: PrivilegeConfig | undefined,
  ids: ProcessIds = systemIds(),
): { uid: number; gid: number } {
  const current = { uid: ids.getuid(), gid: ids.getgid() };
  if (target === undefined) return current;
  const uidChanges = target.uid !== undefined && target.uid !== current.uid;
  const gidChanges = target.gid !== undefined && target.gid !== current.gid;
  if (!uidChanges && !gidChanges) return current;
  const option = uidChanges ? '--uid' : '--gid';
  if (current.uid !== 0) {
    throw new PrivilegeError(
      `${option}: switchyard runs as uid ${current.uid} gid ${current.gid}, not root: it cannot switch to ` +
        `${describe(target)}; start it as root or drop ${option}`,
      option,
    );
  }
  try {
    if (target.gid !== undefined) {
      ids.setgroups([target.gid]);
      ids.setgid(target.gid);
    }
    if (target.uid !== undefined) ids.setuid(target.uid);
  } catch (error) {
    throw new PrivilegeError(`${option}: cannot switch to ${describe(target)}: ${(error as Error).message}`, option);
  }
  const now = { uid: ids.getuid(), gid: ids.getgid() };
  if ((target.uid !== undefined && now.uid !== target.uid) || (target.gid !== undefined && now.gid !== target.gid)) {
    throw new PrivilegeError(`${option}: still uid ${now.uid} gid ${now.gid} after switching`, option);
  }
  if (target.uid !== undefined && target.uid !== 0 && regainsRoot(ids)) {
    throw new PrivilegeError(`${option}: root could be regained after switching to uid ${target.uid}`, '--uid');
  }
  return now;
}

/** node:process's id functions (POSIX only: elsewhere they are missing and any switch fails). */
function systemIds(): ProcessIds {
  const missing = (): never => {
    throw new Error('this platform has no setuid/setgid');
  };
  return {
    getuid: () => process.getuid?.() ?? -1,
    getgid: () => process.getgid?.() ?? -1,
    setgroups: (groups) => (process.setgroups ?? missing)(groups),
    setgid: (id) => (process.setgid ?? missing)(id),
    setuid: (id) => (process.setuid ?? missing)(id),
  };
}

/** True when setuid(0) succeeds (it must not after dropping root, as uWSGI checks too). */
function regainsRoot(ids: ProcessIds): boolean {
  try {
    ids.setuid(0);
  } catch {
    return false;
  }
  return ids.getuid() === 0;
}

function describe(target: PrivilegeConfig): string {
  const parts = [];
  if (target.uid !== undefined) parts.push(`uid ${target.uid}${target.user === undefined ? '' : ` (${target.user})`}`);
  if (target.gid !== undefined) parts.push(`gid ${target.gid}`);
  return parts.join(' ');
}
