/**
 * `--ini FILE[:section]`: reads a uWSGI ini file and expands it, in place, into command-line arguments,
 * so options are processed in order as uWSGI does (a later scalar option overrides, a repeatable one
 * adds; options after `--ini` on the command line override or extend the file's).
 *
 * Syntax (uWSGI's, checked against uwsgi 2.0.21):
 *  - section `[uwsgi]` by default, `FILE:name` picks `[name]`; other sections are not read;
 *  - `key = value` (both trimmed; quotes are kept, as uWSGI does); a repeated key is a repeated option;
 *  - whole-line comments starting with `;` or `#`;
 *  - `%(name)` is the value of the first `name` line of the section (any key, also a custom one that is
 *    no option: uWSGI's placeholders), resolved recursively, even when `name` comes later in the file;
 *  - magic variables `%d` (directory of the file, with a trailing `/`), `%p` (absolute path), `%s` (file
 *    name), `%n` (file name without extension), `%c` (name of the directory), `%%` (a `%`);
 *  - `$(VAR)`: an environment variable;
 *  - a flag is on with `true`, `1`, `yes`, `on` or an empty value, off with `false`, `0`, `no`, `off`.
 * As with uWSGI, a first argument ending in `.ini` (`router.ini`, `router.ini:section`) is an `--ini`, and
 * `-M` is `--master`.
 *
 * Per key, after expansion:
 *  - a Switchyard option (or alias) → `--key value` (or `--key` for a flag);
 *  - a uWSGI option Switchyard does not use (socket, processes without --spawn, master, plugins,
 *    module, harakiri...) → ignored with ONE warning per option name;
 *  - a key used only as a `%(name)` placeholder → nothing;
 *  - anything else → CliError (SY_BAD_OPTION) naming `file:line`. So are malformed lines, unknown
 *    placeholders, unset environment variables, other magic (`%h`, `@(file)`...), uWSGI config logic
 *    (`for`, `if-*`, `include`, `inherit`, nested `ini`), and a missing file or section.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CliError } from './errors.js';
import { UWSGI_OPTION_NAMES } from './uwsgi-option-names.js';

export type OptionKind = 'string' | 'boolean';

export interface IniContext {
  /** Kind of a Switchyard option or alias, undefined for a name Switchyard does not know. */
  readonly optionKind: (name: string) => OptionKind | undefined;
  /** Environment for `$(VAR)`. Default process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Reads a file as text. Default fs.readFileSync. */
  readonly readFile?: (file: string) => string;
  /** Base for relative ini paths. Default process.cwd(). */
  readonly cwd?: string;
}

export interface IniExpansion {
  /** argv with every `--ini` replaced by the options it holds. */
  readonly args: readonly string[];
  /** One per ignored uWSGI option (its first occurrence only). */
  readonly warnings: readonly IniWarning[];
}

export interface IniWarning {
  /** The uWSGI option name, e.g. `socket`. */
  readonly option: string;
  /** `file:line` of its first occurrence. */
  readonly location: string;
  readonly message: string;
}

interface IniLine {
  readonly key: string;
  readonly value: string;
  readonly line: number;
}

const RUN_APPS_WITH_SPAWN =
  "Switchyard does not load apps itself: run them with --spawn 'uwsgi --socket {socket} ...' (embedded mode)";

/**
 * Notes added to the warning for uWSGI options whose behaviour Switchyard always has, or whose absence a
 * user must act on (what breaks, and what to do instead).
 */
const OPTION_NOTES: Readonly<Record<string, string>> = {
  'http-keepalive': 'Switchyard always keeps client connections alive',
  'http-auto-chunked': 'Switchyard re-chunks responses without a length for keep-alive clients',
  'http-chunked-input': 'Switchyard de-chunks request bodies for uwsgi nodes',
  master: "Switchyard's main process always supervises its --workers",
  socket: RUN_APPS_WITH_SPAWN,
  'uwsgi-socket': RUN_APPS_WITH_SPAWN,
  'http-socket': RUN_APPS_WITH_SPAWN,
  'wsgi-file': RUN_APPS_WITH_SPAWN,
  module: RUN_APPS_WITH_SPAWN,
  wsgi: RUN_APPS_WITH_SPAWN,
  mount: RUN_APPS_WITH_SPAWN,
  daemonize: 'Switchyard stays in the foreground and logs to stdout: run it under a service manager',
  daemonize2: 'Switchyard stays in the foreground and logs to stdout: run it under a service manager',
  pidfile: 'Switchyard writes no pidfile: run it under a service manager',
  logto: 'Switchyard logs to stdout (JSON lines)',
  'http-fallback': "no fallback node on connect failure: Switchyard retries the host's other nodes",
  'http-manage-expect': 'Switchyard answers Expect: 100-continue itself; --max-body-size bounds bodies',
};

const CONFIG_LOGIC = /^(?:if-.*|end-?if|for|for-.*|endfor|end-for|include|inherit|ini|yaml|yml|json|js|xml|config)$/;
const TRUE = new Set(['', 'true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

/**
 * uWSGI options whose value maps onto a Switchyard option: `http-keepalive = N` with N > 1 is uWSGI's
 * keep-alive idle timeout in seconds (`--client-keepalive-timeout N`; 0/1/true only turn keep-alive on,
 * which Switchyard always is). Undefined = no translation (the option is dropped with its warning).
 */
function translateUwsgiOption(name: string, value: string): string[] | undefined {
  if (name === 'http-keepalive' && /^\d+$/.test(value) && Number(value) > 1) {
    return ['--client-keepalive-timeout', String(Number(value))];
  }
  return undefined;
}

/** Replaces every `--ini X` / `--ini=X` of `argv` with the options of that file. Throws CliError. */
export function expandIniArgs(argv: readonly string[], context: IniContext): IniExpansion {
  const args: string[] = [];
  const warnings: IniWarning[] = [];
  const warned = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    let spec: string | undefined;
    if (arg === '--ini') {
      spec = argv[++i];
      if (spec === undefined) throw new CliError('--ini takes FILE or FILE:section', '--ini');
    } else if (arg.startsWith('--ini=')) {
      spec = arg.slice(6);
    }
    if (arg === '-M') {
      // uWSGI's short --master (a no-op here, warned about with the other uWSGI-only options).
      args.push('--master');
      continue;
    }
    // `uwsgi router.ini`: a config file as the first argument is an --ini (uWSGI reads it the same way).
    if (spec === undefined && i === 0 && /^[^-].*\.ini(?::[\w.-]+)?$/.test(arg)) spec = arg;
    if (spec === undefined) {
      args.push(arg);
      continue;
    }
    args.push(...iniToArgs(spec, context, warnings, warned));
  }
  return { args, warnings };
}

function iniToArgs(spec: string, context: IniContext, warnings: IniWarning[], warned: Set<string>): string[] {
  const { file, section } = splitSpec(spec);
  const absolute = path.resolve(context.cwd ?? process.cwd(), file);
  let text: string;
  try {
    text = (context.readFile ?? ((f: string) => readFileSync(f, 'utf8')))(absolute);
  } catch (error) {
    throw new CliError(
      `--ini ${spec}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      '--ini',
    );
  }
  const lines = readSection(text, file, section);
  const magic = magicVars(absolute);
  const env = context.env ?? process.env;
  const resolver = new PlaceholderResolver(lines, file, magic, env);
  const args: string[] = [];
  for (const entry of lines) {
    const where = `${file}:${entry.line}`;
    const value = resolver.resolve(entry);
    const kind = context.optionKind(entry.key);
    if (kind === 'boolean') {
      const lower = value.toLowerCase();
      if (TRUE.has(lower)) args.push(`--${entry.key}`);
      else if (!FALSE.has(lower)) {
        throw new CliError(`${where}: "${entry.key}" is a flag, use true or false (got "${value}")`, '--ini', where);
      }
    } else if (kind === 'string') {
      args.push(`--${entry.key}`, value);
    } else if (CONFIG_LOGIC.test(entry.key)) {
      throw new CliError(
        `${where}: uWSGI config logic and includes ("${entry.key}") are not supported`,
        '--ini',
        where,
      );
    } else if (translateUwsgiOption(entry.key, value) !== undefined) {
      args.push(...translateUwsgiOption(entry.key, value)!);
    } else if (UWSGI_OPTION_NAMES.has(entry.key)) {
      if (!warned.has(entry.key)) {
        warned.add(entry.key);
        const note = OPTION_NOTES[entry.key];
        warnings.push({
          option: entry.key,
          location: where,
          message: `${where}: uWSGI option "${entry.key}" is not used by Switchyard (ignored${note === undefined ? '' : `: ${note}`})`,
        });
      }
    } else if (!resolver.referenced.has(entry.key)) {
      throw new CliError(`${where}: "${entry.key}" is not a uWSGI or Switchyard option`, '--ini', where);
    }
  }
  return args;
}

/** `FILE` or `FILE:section` (the text after the last `:`, when it holds no `/`). */
function splitSpec(spec: string): { file: string; section: string } {
  const colon = spec.lastIndexOf(':');
  if (colon > 0 && !spec.slice(colon + 1).includes('/')) {
    const section = spec.slice(colon + 1);
    if (section.length === 0) throw new CliError(`--ini ${spec}: empty section name`, '--ini');
    return { file: spec.slice(0, colon), section };
  }
  return { file: spec, section: 'uwsgi' };
}

/** The `key = value` lines of `[section]`, in order. Throws on malformed lines or a missing section. */
export function readSection(text: string, file: string, section: string): IniLine[] {
  const out: IniLine[] = [];
  let current: string | undefined;
  let found = false;
  const rows = text.split('\n');
  for (let i = 0; i < rows.length; i++) {
    const line = rows[i]!.replace(/\r$/, '').trim();
    if (line.length === 0 || line.startsWith(';') || line.startsWith('#')) continue;
    if (line.startsWith('[')) {
      if (!line.endsWith(']') || line.length < 3) {
        throw new CliError(`${file}:${i + 1}: malformed section header`, '--ini', `${file}:${i + 1}`);
      }
      current = line.slice(1, -1).trim();
      if (current === section) found = true;
      continue;
    }
    if (current !== section) continue;
    const eq = line.indexOf('=');
    const key = eq < 0 ? '' : line.slice(0, eq).trim();
    if (eq <= 0 || !/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(key)) {
      throw new CliError(`${file}:${i + 1}: expected "key = value"`, '--ini', `${file}:${i + 1}`);
    }
    out.push({ key, value: line.slice(eq + 1).trim(), line: i + 1 });
  }
  if (!found) throw new CliError(`--ini ${file}: no [${section}] section`, '--ini');
  return out;
}

/** uWSGI's magic variables for the file at `absolute`. */
function magicVars(absolute: string): Readonly<Record<string, string>> {
  const dir = path.dirname(absolute);
  const base = path.basename(absolute);
  const ext = path.extname(base);
  return {
    d: dir.endsWith('/') ? dir : `${dir}/`,
    p: absolute,
    s: base,
    n: ext.length > 0 ? base.slice(0, -ext.length) : base,
    c: path.basename(dir),
    '%': '%',
  };
}

/** Resolves `%(name)`, magic `%x` and `$(VAR)` in values; remembers which keys are placeholders. */
class PlaceholderResolver {
  readonly referenced = new Set<string>();
  private readonly first = new Map<string, IniLine>();
  private readonly cache = new Map<IniLine, string>();
  /** Lines whose value is being resolved (cycle detection). */
  private readonly resolving = new Set<IniLine>();

  constructor(
    lines: readonly IniLine[],
    private readonly file: string,
    private readonly magic: Readonly<Record<string, string>>,
    private readonly env: Readonly<Record<string, string | undefined>>,
  ) {
    for (const line of lines) if (!this.first.has(line.key)) this.first.set(line.key, line);
    for (const line of lines) for (const m of line.value.matchAll(/%\(([^)]*)\)/g)) this.referenced.add(m[1]!);
  }

  resolve(line: IniLine, depth = 0): string {
    const cached = this.cache.get(line);
    if (cached !== undefined) return cached;
    const where = `${this.file}:${line.line}`;
    if (depth > 32) throw new CliError(`${where}: placeholders nest too deep`, '--ini', where);
    let out = '';
    const v = line.value;
    for (let i = 0; i < v.length; i++) {
      const c = v[i]!;
      const next = v[i + 1];
      if (c === '%' && next === '(') {
        const close = v.indexOf(')', i + 2);
        if (close < 0) throw new CliError(`${where}: unterminated %( placeholder`, '--ini', where);
        const name = v.slice(i + 2, close);
        const target = this.first.get(name);
        if (target === undefined) throw new CliError(`${where}: unknown placeholder %(${name})`, '--ini', where);
        if (this.resolving.has(target)) {
          throw new CliError(`${where}: placeholder %(${name}) refers back to itself`, '--ini', where);
        }
        this.resolving.add(line);
        try {
          out += this.resolve(target, depth + 1);
        } finally {
          this.resolving.delete(line);
        }
        i = close;
      } else if (c === '%' && next !== undefined && /[A-Za-z0-9%[\]$@_]/.test(next)) {
        const value = this.magic[next];
        if (value === undefined) {
          throw new CliError(
            `${where}: magic variable %${next} is not supported (use %d %p %s %n %c %%)`,
            '--ini',
            where,
          );
        }
        out += value;
        i++;
      } else if (c === '$' && next === '(') {
        const close = v.indexOf(')', i + 2);
        if (close < 0) throw new CliError(`${where}: unterminated $( variable`, '--ini', where);
        const name = v.slice(i + 2, close);
        const value = this.env[name];
        if (value === undefined)
          throw new CliError(`${where}: environment variable ${name} is not set`, '--ini', where);
        out += value;
        i = close;
      } else if ((c === '@' || c === '!') && next === '(') {
        throw new CliError(`${where}: uWSGI "${c}(...)" expansion is not supported`, '--ini', where);
      } else {
        out += c;
      }
    }
    this.cache.set(line, out);
    return out;
  }
}

/**
 * The command line's uWSGI options that Switchyard does not use (`--master`, `--processes 4`,
 * `--harakiri=30`): dropped with one warning per name, as in ini files, so that a uWSGI router command
 * line runs unchanged. `known(name)`: a Switchyard option or alias (those are never dropped). A dropped
 * option takes the next argument as its value unless that starts with `-` (Switchyard has no positional
 * arguments, so such a token can only be the option's value). Anything else unknown stays, for the
 * parser to refuse.
 */
export function dropUwsgiOnlyArgs(
  args: readonly string[],
  known: (name: string) => boolean,
): { args: string[]; warnings: string[] } {
  const kept: string[] = [];
  const warnings: string[] = [];
  const warned = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const m = /^--([^=]+)(=.*)?$/.exec(arg);
    const name = m?.[1];
    if (name === undefined || known(name) || !UWSGI_OPTION_NAMES.has(name)) {
      kept.push(arg);
      continue;
    }
    let value = m?.[2]?.slice(1);
    if (m?.[2] === undefined && i + 1 < args.length && !args[i + 1]!.startsWith('-')) value = args[++i];
    const translated = translateUwsgiOption(name, value ?? '');
    if (translated !== undefined) {
      kept.push(...translated);
      continue;
    }
    if (warned.has(name)) continue;
    warned.add(name);
    const note = OPTION_NOTES[name];
    warnings.push(`uWSGI option --${name} is not used by Switchyard (ignored${note === undefined ? '' : `: ${note}`})`);
  }
  return { args: kept, warnings };
}
