import { secureRandomBytes } from './random.js';

describe('secureRandomBytes', () => {
  it('gives exactly the size asked for, from 0 bytes to more than the 4 KiB block', () => {
    for (const size of [0, 1, 12, 16, 32, 4095, 4096, 4097, 65536]) expect(secureRandomBytes(size)).toHaveLength(size);
  });

  it('never hands out the same bytes twice, across many refills of the block', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) seen.add(secureRandomBytes(16).toString('hex'));
    expect(seen.size).toBe(20_000);
  });

  it('refuses a size that is not a byte count', () => {
    for (const size of [-1, -16, 1.5, Number.NaN]) expect(() => secureRandomBytes(size)).toThrow(RangeError);
  });

  it('keeps what it handed out: later draws and refills of the block change no earlier draw', () => {
    const first = secureRandomBytes(16);
    const before = Buffer.from(first);
    for (let i = 0; i < 3; i++) secureRandomBytes(4096 - 16);
    expect(first).toEqual(before);
    expect(first.buffer.byteLength).toBe(16);
  });

  it('gives each caller its own copy: changing one draw changes no other', () => {
    const first = secureRandomBytes(32);
    const second = secureRandomBytes(32);
    const before = Buffer.from(second);
    first.fill(0);
    expect(second).toEqual(before);
  });
});
