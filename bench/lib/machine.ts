/**
 * What the results file records about the machine, and the tools' presence (installing the Debian
 * packages `wrk` and `nginx-light` when missing and running as root).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface MachineInfo {
  readonly hostname: string;
  readonly cpus: number;
  readonly cpuModel: string;
  readonly node: string;
  readonly kernel: string;
}

export function machineInfo(): MachineInfo {
  let cpuModel = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'latin1'));
    if (m?.[1] !== undefined) cpuModel = m[1].trim();
  } catch {
    // Not Linux: keep os.cpus().
  }
  return {
    hostname: os.hostname(),
    cpus: os.availableParallelism(),
    cpuModel,
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
  };
}

export function hasCommand(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/**
 * Makes sure wrk and nginx exist: installs `wrk nginx-light` with apt-get when one is missing and we are
 * root. Returns the lines to print when something is still missing (empty when all is there).
 */
export function ensureTools(): string[] {
  const missing = ['wrk', 'nginx'].filter((c) => !hasCommand(c));
  if (missing.length === 0) return [];
  const isRoot = process.getuid?.() === 0;
  if (isRoot && hasCommand('apt-get')) {
    process.stderr.write(`bench: ${missing.join(' and ')} missing, running apt-get install -y wrk nginx-light\n`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    let r = spawnSync('apt-get', ['install', '-y', 'wrk', 'nginx-light'], { stdio: 'inherit', env });
    if (r.status !== 0) {
      spawnSync('apt-get', ['update'], { stdio: 'inherit', env });
      r = spawnSync('apt-get', ['install', '-y', 'wrk', 'nginx-light'], { stdio: 'inherit', env });
    }
  }
  const still = ['wrk', 'nginx'].filter((c) => !hasCommand(c));
  return still.map(
    (c) =>
      `bench: ${c} is not installed${isRoot ? ' and apt-get install failed' : ''}; ` +
      `install it with: sudo apt-get install -y wrk nginx-light (Debian/Ubuntu)`,
  );
}

let ticksPerSecond: number | undefined;

/**
 * Time of one CPU so far, in seconds (from /proc/stat). `busy` = user + nice + system + steal: task time plus
 * time the hypervisor took away. `irq` = irq + softirq, kept apart because loopback TCP processing done on
 * behalf of the process on that core lands there (with IRQ time accounting) instead of in its stime.
 */
export function coreTimes(cpu: number): { busy: number; irq: number; total: number } {
  ticksPerSecond ??= Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;
  const line = readFileSync('/proc/stat', 'latin1')
    .split('\n')
    .find((l) => l.startsWith(`cpu${cpu} `));
  if (line === undefined) return { busy: 0, irq: 0, total: 0 };
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line
    .trim()
    .split(/\s+/)
    .slice(1, 9)
    .map(Number);
  const busy = user + nice + system + steal;
  return {
    busy: busy / ticksPerSecond,
    irq: (irq + softirq) / ticksPerSecond,
    total: (busy + irq + softirq + idle + iowait) / ticksPerSecond,
  };
}

/** Fraction (0..1) of all CPUs busy over the next `ms` milliseconds: other work on the machine. */
export async function backgroundLoad(cpus: number, ms = 1000): Promise<number> {
  const ids = Array.from({ length: cpus }, (_, i) => i);
  const before = ids.map(coreTimes);
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = ids.map(coreTimes);
  let busy = 0;
  let total = 0;
  ids.forEach((i) => {
    busy += after[i]!.busy + after[i]!.irq - before[i]!.busy - before[i]!.irq;
    total += after[i]!.total - before[i]!.total;
  });
  return total > 0 ? busy / total : 0;
}
