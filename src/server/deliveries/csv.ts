import type { Delivery } from './delivery.entity.js';

/** Cells a spreadsheet would run as a formula start with one of these (OWASP "CSV injection"). */
const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * One CSV cell (RFC 4180): quoted when it holds a comma, quote or line break, quotes doubled; a
 * text that a spreadsheet would take for a formula is prefixed with `'`.
 */
export function csvCell(value: string | number | Date | null | undefined): string {
  if (value === null || value === undefined) return '';
  let text = value instanceof Date ? value.toISOString() : String(value);
  if (typeof value === 'string' && FORMULA_START.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export const CSV_COLUMNS = [
  'id',
  'content_id',
  'content_name',
  'status',
  'client_fingerprint',
  'requester_ip',
  'issued_at',
  'sent_at',
  'confirmed_at',
  'failed_at',
  'expired_at',
  'expires_at',
  'bytes_sent',
  'reissued_from',
] as const;

export const CSV_HEADER = `${CSV_COLUMNS.join(',')}\r\n`;

/** One delivery as a CSV line (CRLF), in CSV_COLUMNS order. */
export function csvRow(d: Delivery): string {
  return (
    [
      d.id,
      d.contentId,
      d.content?.name ?? null,
      d.status,
      d.clientFingerprint,
      d.requesterIp,
      d.issuedAt,
      d.sentAt,
      d.confirmedAt,
      d.failedAt,
      d.expiredAt,
      d.expiresAt,
      d.bytesSent,
      d.reissuedFrom,
    ]
      .map(csvCell)
      .join(',') + '\r\n'
  );
}
