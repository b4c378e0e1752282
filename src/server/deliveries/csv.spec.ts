import { csvCell, csvRow, CSV_COLUMNS, CSV_HEADER } from './csv.js';
import type { Delivery } from './delivery.entity.js';

describe('CSV cells', () => {
  test.each([
    ['plain', 'plain'],
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['two\nlines', '"two\nlines"'],
    ['=1+2', "'=1+2"],
    ['+SUM(A1)', "'+SUM(A1)"],
    ['-2', "'-2"],
    ['@cmd', "'@cmd"],
    ['=HYPERLINK("http://x","y")', `"'=HYPERLINK(""http://x"",""y"")"`],
    ['\tx', "'\tx"],
    ['', ''],
  ])('%j → %s', (value, cell) => {
    expect(csvCell(value)).toBe(cell);
  });

  test('null is empty, numbers and dates are not escaped', () => {
    expect(csvCell(null)).toBe('');
    expect(csvCell(-5)).toBe('-5');
    expect(csvCell(new Date('2026-11-02T09:00:00Z'))).toBe('2026-11-02T09:00:00.000Z');
  });

  test('a row has one cell per header column', () => {
    const delivery = {
      id: 'id1',
      contentId: 'c1',
      content: { name: '=evil(),x.txt' },
      status: 'sent',
      clientFingerprint: null,
      requesterIp: '127.0.0.1',
      issuedAt: new Date(0),
      sentAt: new Date(1),
      confirmedAt: null,
      failedAt: null,
      expiredAt: null,
      expiresAt: new Date(2),
      bytesSent: 10,
      reissuedFrom: null,
    } as unknown as Delivery;
    const row = csvRow(delivery);
    expect(row.endsWith('\r\n')).toBe(true);
    expect(row).toContain(`"'=evil(),x.txt"`);
    expect(CSV_HEADER.trim().split(',')).toEqual([...CSV_COLUMNS]);
  });
});
