import { readFileSync } from 'node:fs';

export interface Summary {
  median: number;
  min: number;
  max: number;
  runs: number;
}

export function summarize(values: number[]): Summary {
  if (values.length === 0) throw new Error('no measurements');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1], runs: sorted.length };
}

/** The p-th percentile (0-100) by nearest rank. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function statusField(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no ${field} for process ${pid}`);
  return Number(match[1]) * 1024;
}

/** Resident memory of a process, polled every `intervalMs` while a phase runs; also its kernel high-water mark. */
export class RssSampler {
  private timer: NodeJS.Timeout | null = null;
  private peak = 0;

  constructor(
    private readonly pid: number,
    private readonly intervalMs = 10,
  ) {}

  start(): this {
    this.peak = statusField(this.pid, 'VmRSS');
    this.timer = setInterval(() => {
      try {
        this.peak = Math.max(this.peak, statusField(this.pid, 'VmRSS'));
      } catch {
        this.stop();
      }
    }, this.intervalMs);
    return this;
  }

  /** Peak polled RSS since start, in bytes. */
  stop(): number {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    return this.peak;
  }

  highWaterMark(): number {
    return statusField(this.pid, 'VmHWM');
  }
}

export const MB = 1e6;
export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
