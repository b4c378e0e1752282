import cliProgress from 'cli-progress';

/** Byte progress on stderr, only when stderr is a terminal (never in pipes, logs or CI). */
export interface ByteProgress {
  add(bytes: number): void;
  stop(): void;
}

const NONE: ByteProgress = { add: () => undefined, stop: () => undefined };

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** `total` may be null (no Content-Length): the bar then shows bytes so far only. `start`: bytes already done (a resumed download). */
export function byteProgress(label: string, total: number | null, enabled = process.stderr.isTTY === true, start = 0): ByteProgress {
  if (!enabled) return NONE;
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format:
        total === null
          ? `${label} {value} | {duration_formatted}`
          : `${label} [{bar}] {percentage}% | {value}/{total} | ETA {eta_formatted}`,
      formatValue: (value, _options, type) => (type === 'value' || type === 'total' ? formatBytes(value) : String(value)),
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  let value = start;
  bar.start(total ?? 0, start);
  return {
    add(bytes) {
      value += bytes;
      bar.update(value);
    },
    stop() {
      bar.stop();
    },
  };
}
