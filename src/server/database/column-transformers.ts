import type { ValueTransformer } from 'typeorm';

/** bigint columns come back from pg as strings; sizes and byte counts stay far below 2^53. */
export const bigintToNumber: ValueTransformer = {
  to: (value: number | null | undefined) => value,
  from: (value: string | null) => (value === null ? null : Number(value)),
};
