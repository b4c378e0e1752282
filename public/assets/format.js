// Small formatting helpers shared by the portal and the dashboard.

/** 1536 → "1.5 KiB". */
export function formatBytes(bytes) {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = Number(bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} ${units[0]}` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** A <time> element showing a local date and time, or an em dash for null. */
export function timeElement(iso) {
  if (!iso) {
    const none = document.createElement('span');
    none.className = 'none';
    none.textContent = '—';
    return none;
  }
  const time = document.createElement('time');
  time.dateTime = new Date(iso).toISOString();
  time.textContent = new Date(iso).toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
  return time;
}

/** document.createElement with a class and text. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

/** "sales, berlin," → ['sales', 'berlin']: the labels typed in one field. */
export function splitList(text) {
  return text
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);
}

/** The first 12 hex digits of a fingerprint with an ellipsis; the title holds it whole. */
export function fingerprintElement(fingerprint) {
  const code = el('code', null, `${fingerprint.slice(0, 12)}…`);
  code.title = fingerprint;
  return code;
}

/** The first 8 hex digits of a content id; the title holds it whole (two uploads of one name differ here). */
export function contentIdElement(id) {
  const code = el('code', 'content-id', id.slice(0, 8));
  code.title = id;
  return code;
}
