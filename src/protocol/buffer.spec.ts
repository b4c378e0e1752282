import { BufferReader } from './buffer-reader.js';
import { BufferWriter } from './buffer-writer.js';
import { refusal } from './testing/test-buffers.js';

describe('BufferWriter', () => {
  it('writes big-endian integers and length-prefixed strings', () => {
    const bytes = new BufferWriter(1)
      .addUInt8(0xab)
      .addUInt16(0x0102)
      .addUInt32(0x03040506)
      .addUInt64(2 ** 40 + 7)
      .addShortString('hé')
      .addString('x')
      .flush();
    expect(bytes.toString('hex')).toBe('ab' + '0102' + '03040506' + '000001000000' + '0007' + '03' + '68c3a9' + '0001' + '78');
  });

  it('patches the length prefix after growing past its first buffer', () => {
    const writer = new BufferWriter(4).addUInt32(0).addBytes(Buffer.alloc(100, 1));
    expect(writer.patchUInt32(0, writer.length).flush().readUInt32BE(0)).toBe(104);
  });

  it('refuses unsafe or negative 64-bit values and mis-sized fixed fields', () => {
    expect(() => new BufferWriter().addUInt64(2 ** 53)).toThrow(RangeError);
    expect(() => new BufferWriter().addUInt64(-1)).toThrow(RangeError);
    expect(() => new BufferWriter().addFixed(Buffer.alloc(15), 16)).toThrow(RangeError);
  });

  it('refuses strings over their limits: TOO_LARGE', () => {
    expect(new BufferWriter().addShortString('a'.repeat(255)).length).toBe(256);
    expect(refusal(() => new BufferWriter().addShortString('a'.repeat(256))).code).toBe('TOO_LARGE');
    expect(new BufferWriter().addString('a'.repeat(1024)).length).toBe(1026);
    expect(refusal(() => new BufferWriter().addString('a'.repeat(1025))).code).toBe('TOO_LARGE');
  });
});

describe('BufferReader', () => {
  it('reads what the layout says', () => {
    const reader = new BufferReader(
      Buffer.from('ab' + '0102' + '03040506' + '0000010000000007' + '03' + '68c3a9' + '0001' + '78', 'hex'),
      'test',
    );
    expect(reader.uint8('a')).toBe(0xab);
    expect(reader.uint16('b')).toBe(0x0102);
    expect(reader.uint32('c')).toBe(0x03040506);
    expect(reader.uint64('d')).toBe(2 ** 40 + 7);
    expect(reader.shortString('e')).toBe('hé');
    expect(reader.string('f')).toBe('x');
    expect(() => reader.end()).not.toThrow();
  });

  it('refuses a 64-bit value above 2^53 - 1: MALFORMED', () => {
    expect(new BufferReader(Buffer.from('001fffffffffffff', 'hex'), 't').uint64('v')).toBe(Number.MAX_SAFE_INTEGER);
    expect(refusal(() => new BufferReader(Buffer.from('0020000000000000', 'hex'), 't').uint64('v')).code).toBe('MALFORMED');
  });

  it('turns every overrun into TRUNCATED, never a RangeError', () => {
    expect(refusal(() => new BufferReader(Buffer.from('01', 'hex'), 't').uint16('v')).code).toBe('TRUNCATED');
    expect(refusal(() => new BufferReader(Buffer.from('0005616263', 'hex'), 't').string('v')).code).toBe('TRUNCATED');
    expect(refusal(() => new BufferReader(Buffer.alloc(7), 't').uint64('v')).code).toBe('TRUNCATED');
  });

  it('refuses a 2-byte string length over 1024 before reading it: TOO_LARGE', () => {
    expect(refusal(() => new BufferReader(Buffer.from('0401', 'hex'), 't').string('v')).code).toBe('TOO_LARGE');
  });

  it('refuses trailing bytes: MALFORMED', () => {
    const reader = new BufferReader(Buffer.from('0102', 'hex'), 't');
    reader.uint8('v');
    expect(refusal(() => reader.end()).code).toBe('MALFORMED');
  });
});
