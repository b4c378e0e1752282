import { api, onUnauthorized, subscribeDeliveryEvents, throttle } from './admin-api.js';
import { contentIdElement, el, fingerprintElement, formatBytes, timeElement } from './format.js';

const $ = (id) => document.getElementById(id);
const PAGE_SIZE = 50;
const RANK = { issued: 0, failed: 1, sent: 2, expired: 3, confirmed: 4 };

/** The sorts of the column headers: the order a first click gives, and how the caption says it. */
const SORTS = {
  status: { first: 'asc', asc: 'by status, pending to expired', desc: 'by status, expired to pending' },
  content: { first: 'asc', asc: 'by content name, A to Z', desc: 'by content name, Z to A' },
  client: { first: 'asc', asc: 'by client fingerprint, 0 to f', desc: 'by client fingerprint, f to 0' },
  requesterIp: { first: 'asc', asc: 'by requester IP, ascending', desc: 'by requester IP, descending' },
  issuedAt: { first: 'desc', asc: 'oldest first', desc: 'newest first' },
  sentAt: { first: 'desc', asc: 'by time sent, earliest first', desc: 'by time sent, latest first' },
  confirmedAt: { first: 'desc', asc: 'by time confirmed, earliest first', desc: 'by time confirmed, latest first' },
};
const DEFAULT_SORT = { sort: 'issuedAt', order: 'desc' };
const SEARCH_DELAY_MS = 300;

const state = {
  page: 1,
  total: 0,
  filters: {},
  sort: { ...DEFAULT_SORT },
  listRequest: 0,
  contents: [],
  events: null,
  openDelivery: null,
  inflight: new Set(),
  dirty: new Set(),
};

onUnauthorized(() => showLogin('Your session has ended; log in again.'));

function announce(text) {
  const announcer = $('announcer');
  announcer.textContent = '';
  // A fresh text node each time, so screen readers repeat identical announcements.
  setTimeout(() => (announcer.textContent = text), 50);
}

const shortId = (id) => id.slice(0, 8);

/**
 * A table cell whose long text is cut with an ellipsis (table cells ignore max-width); the title holds it whole.
 * With a content id, its first 8 digits follow (the whole id in their title): two uploads of one name differ there.
 */
function nameCell(tag, className, text, contentId) {
  const cell = el(tag, className);
  const inner = el('span', 'cut', text);
  inner.title = text;
  cell.append(inner);
  if (contentId) cell.append(' ', contentIdElement(contentId));
  return cell;
}

// ---- login / logout ---------------------------------------------------------------------------

function showLogin(message = '') {
  disconnectEvents();
  $('boot-status').hidden = true;
  $('dashboard').hidden = true;
  $('logout').hidden = true;
  $('login-section').hidden = false;
  $('login-error').textContent = message;
  $('token').focus();
}

function showDashboard() {
  $('boot-status').hidden = true;
  $('login-section').hidden = true;
  $('dashboard').hidden = false;
  $('logout').hidden = false;
  connectEvents();
  loadContents();
  loadDeliveries();
  loadCounts();
}

$('login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const token = $('token').value;
  $('login-error').textContent = '';
  try {
    await api('/api/session', { method: 'POST', json: { token } });
    $('token').value = '';
    showDashboard();
    $('deliveries-title').setAttribute('tabindex', '-1');
    $('deliveries-title').focus();
  } catch (error) {
    $('login-error').textContent = error.status === 401 ? 'Wrong admin token: access refused.' : `Login failed (${error.message}).`;
    $('token').select();
  }
});

$('logout').addEventListener('click', async () => {
  try {
    await api('/api/session', { method: 'DELETE' });
  } finally {
    showLogin('You are logged out.');
  }
});

// ---- deliveries -------------------------------------------------------------------------------

/** A client as typed or copied from the table: "0a1b2c3d4e5f…" is the fingerprints starting with those digits. */
function clientFilter(text) {
  const value = text.trim().replace(/(…|\.\.\.)$/, '');
  return /^[0-9a-fA-F]{12,64}$/.test(value) ? value.toLowerCase() : value;
}

function readFilters() {
  const form = $('filters');
  const filters = {};
  for (const name of ['search', 'status', 'contentId']) {
    const value = form.elements[name].value.trim();
    if (value) filters[name] = value;
  }
  const client = clientFilter(form.elements.clientId.value);
  if (client) filters.clientId = client;
  for (const name of ['from', 'to']) {
    const value = form.elements[name].value;
    if (value) filters[name] = new Date(value).toISOString();
  }
  return filters;
}

function query(extra = {}) {
  return new URLSearchParams({ ...state.filters, ...extra }).toString();
}

const isDefaultSort = () => state.sort.sort === DEFAULT_SORT.sort && state.sort.order === DEFAULT_SORT.order;

/** What the server's `search` matches (content name, starts of id, fingerprint, IP), for rows that arrive live. */
function matchesSearch(view, search) {
  const text = search.toLowerCase();
  if ((view.contentName ?? '').toLowerCase().includes(text)) return true;
  const hex = text.replace(/-/g, '');
  if (/^[0-9a-f]{4,}$/.test(hex)) {
    if (view.id.replace(/-/g, '').startsWith(hex)) return true;
    if (!text.includes('-') && view.clientFingerprint?.startsWith(hex)) return true;
  }
  return /^[0-9a-f:.]+$/.test(text) && (view.requesterIp ?? '').toLowerCase().startsWith(text);
}

function matchesClient(view, client) {
  if (/^[0-9a-f]{12,63}$/.test(client)) return Boolean(view.clientFingerprint?.startsWith(client));
  return view.clientFingerprint === client || view.requesterIp === client;
}

function matchesFilters(view) {
  const f = state.filters;
  if (f.status && view.status !== f.status) return false;
  if (f.contentId && view.contentId !== f.contentId) return false;
  if (f.clientId && !matchesClient(view, f.clientId)) return false;
  if (f.search && !matchesSearch(view, f.search)) return false;
  if (f.from && new Date(view.issuedAt) < new Date(f.from)) return false;
  if (f.to && new Date(view.issuedAt) >= new Date(f.to)) return false; // `to` is exclusive, as on the server
  return true;
}

function statusBadge(status) {
  const badge = el('span', `badge status-${status}`, status);
  return badge;
}

/** The status badge and, for re-issues, which delivery replaced this one or which one this replaces. */
function statusCell(view) {
  const cell = el('td', 'status');
  cell.append(statusBadge(view.status));
  if (view.reissuedAs) cell.append(el('span', 'reissue-note', `re-issued as ${shortId(view.reissuedAs)}`));
  if (view.reissuedFrom) cell.append(el('span', 'reissue-note', `re-issue of ${shortId(view.reissuedFrom)}`));
  return cell;
}

function clientCell(view) {
  const cell = el('td', 'client');
  if (view.clientFingerprint) {
    cell.append(fingerprintElement(view.clientFingerprint));
  } else {
    cell.append(el('span', 'none', 'anonymous'));
  }
  return cell;
}

function actionsCell(view) {
  const cell = el('td', 'actions');
  const details = el('button', 'secondary small details-button', 'Details');
  details.type = 'button';
  details.setAttribute('aria-label', `Details of delivery ${shortId(view.id)}`);
  details.setAttribute('aria-expanded', String(state.openDelivery === view.id));
  details.addEventListener('click', () => toggleDetails(view.id));
  cell.append(details);
  if ((view.status === 'expired' || view.status === 'failed') && !view.reissuedAs) {
    const reissue = el('button', 'small reissue', 'Re-issue');
    reissue.type = 'button';
    reissue.setAttribute('aria-label', `Re-issue delivery ${shortId(view.id)}`);
    reissue.addEventListener('click', () => reissueDelivery(view.id, reissue));
    cell.append(reissue);
  }
  return cell;
}

const receiptUrl = (id) => `/api/deliveries/${encodeURIComponent(id)}/receipt/file`;

function row(view) {
  const tr = el('tr');
  tr.dataset.id = view.id;
  tr.dataset.view = JSON.stringify(view);
  tr.tabIndex = 0;
  const reissued = view.reissuedAs ? `, re-issued as ${shortId(view.reissuedAs)}` : '';
  tr.setAttribute('aria-label', `Delivery ${shortId(view.id)} of ${view.contentName ?? view.contentId}: ${view.status}${reissued}`);
  const status = statusCell(view);
  const issued = el('td', 'issued');
  issued.append(timeElement(view.issuedAt));
  const sent = el('td', 'sent');
  sent.append(timeElement(view.sentAt));
  const confirmed = el('td', 'confirmed');
  confirmed.append(timeElement(view.confirmedAt));
  tr.append(
    status,
    nameCell('td', 'content', view.contentName ?? '(deleted)', view.contentId),
    clientCell(view),
    el('td', 'ip', view.requesterIp),
    issued,
    sent,
    confirmed,
    actionsCell(view),
  );
  tr.addEventListener('click', (event) => {
    if (!event.target.closest('button, a')) toggleDetails(view.id);
  });
  tr.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && event.target === tr) openDetails(view.id);
  });
  return tr;
}

function upsertRow(view) {
  const tbody = $('deliveries').tBodies[0];
  const existing = tbody.querySelector(`tr[data-id="${CSS.escape(view.id)}"]`);
  if (existing) {
    const fresh = row(view);
    const hadFocus = document.activeElement === existing;
    existing.replaceWith(fresh);
    if (hadFocus) fresh.focus();
    return;
  }
  if (state.page !== 1 || !matchesFilters(view)) return;
  if (!isDefaultSort()) {
    // Where a new delivery goes in another order is the server's to say: the page is read again, at most every 2 s.
    reloadSorted();
    return;
  }
  tbody.querySelector('tr.empty')?.remove();
  tbody.prepend(row(view));
  state.total += 1;
  const rows = tbody.querySelectorAll('tr[data-id]');
  if (rows.length > PAGE_SIZE) closeIfShowing(rows[rows.length - 1]).remove();
  updatePager();
  $('deliveries-caption').textContent = captionText();
  announce(`New delivery ${shortId(view.id)} of ${view.contentName ?? 'a content'}: ${view.status}.`);
}

function emptyRow() {
  const tr = el('tr', 'empty');
  const cell = el('td', 'none', Object.keys(state.filters).length ? 'No delivery matches these filters.' : 'No deliveries yet.');
  cell.colSpan = 8;
  tr.append(cell);
  return tr;
}

function captionText() {
  return `Deliveries, ${SORTS[state.sort.sort][state.sort.order]}: ${state.total} in all`;
}

/** aria-sort on the header of the sorted column only, as the ARIA practices have it. */
function showSort() {
  for (const th of document.querySelectorAll('#deliveries thead th[data-sort]')) {
    if (th.dataset.sort === state.sort.sort) th.setAttribute('aria-sort', state.sort.order === 'asc' ? 'ascending' : 'descending');
    else th.removeAttribute('aria-sort');
  }
}

for (const th of document.querySelectorAll('#deliveries thead th[data-sort]')) {
  th.querySelector('button').addEventListener('click', () => {
    const sort = th.dataset.sort;
    const order = state.sort.sort === sort ? (state.sort.order === 'asc' ? 'desc' : 'asc') : SORTS[sort].first;
    state.sort = { sort, order };
    state.page = 1;
    showSort();
    loadDeliveries();
    announce(`Deliveries sorted ${SORTS[sort][order]}.`);
  });
}

function updatePager() {
  const pages = Math.max(1, Math.ceil(state.total / PAGE_SIZE));
  $('page-info').textContent = `Page ${state.page} of ${pages}`;
  $('prev').disabled = state.page <= 1;
  $('next').disabled = state.page >= pages;
}

/** Reads the page of deliveries the filters, the sort and the pager say; an answer overtaken by a later request is dropped. */
async function loadDeliveries() {
  const request = ++state.listRequest;
  $('export').href = `/api/deliveries/export.csv${Object.keys(state.filters).length ? `?${query()}` : ''}`;
  const sort = isDefaultSort() ? {} : state.sort;
  try {
    const result = await api(`/api/deliveries?${query({ ...sort, page: state.page, pageSize: PAGE_SIZE })}`);
    if (request !== state.listRequest) return;
    $('deliveries-error').textContent = '';
    state.total = result.total;
    const tbody = $('deliveries').tBodies[0];
    const focused = document.activeElement?.closest?.('#deliveries tbody tr[data-id]')?.dataset.id;
    const focusInDetails = Boolean(detailsTr?.contains(document.activeElement));
    tbody.replaceChildren(...(result.items.length > 0 ? result.items.map(row) : [emptyRow()]));
    // The open timeline stays under its row if the row is still on the page.
    const open = state.openDelivery && tbody.querySelector(`tr[data-id="${CSS.escape(state.openDelivery)}"]`);
    if (open) open.after(detailsRow());
    else if (state.openDelivery) state.openDelivery = null;
    if (focused) tbody.querySelector(`tr[data-id="${CSS.escape(focused)}"]`)?.focus();
    if (focusInDetails) (open ? $('details-title') : $('deliveries-title')).focus({ preventScroll: true });
    $('deliveries-caption').textContent = captionText();
    updatePager();
  } catch (error) {
    if (request === state.listRequest) $('deliveries-error').textContent = `Deliveries could not be loaded (${error.message}).`;
  }
}

const reloadSorted = throttle(loadDeliveries, 2000);

/** Fetches one delivery and puts its row in the table; one request per delivery at a time, repeated if events came meanwhile. */
async function refreshRow(id) {
  if (state.inflight.has(id)) {
    state.dirty.add(id);
    return;
  }
  state.inflight.add(id);
  try {
    upsertRow(await api(`/api/deliveries/${encodeURIComponent(id)}`));
  } catch (error) {
    $('deliveries-error').textContent = `Delivery ${shortId(id)} could not be loaded (${error.message}).`;
  } finally {
    state.inflight.delete(id);
    if (state.dirty.delete(id)) refreshRow(id);
  }
}

/** Applies one live event to the row it concerns. */
function applyEvent(message) {
  if (!message.deliveryId) return;
  const id = message.deliveryId;
  if (state.openDelivery === id) openDetails(id, { keepFocus: true });
  // "reissued" (on the old delivery) changes no status, but the row must lose its Re-issue button.
  if (message.type === 'reissued') {
    if ($('deliveries').tBodies[0].querySelector(`tr[data-id="${CSS.escape(id)}"]`)) refreshRow(id);
    return;
  }
  if (!message.status) return; // a refused confirmation changes no status
  scheduleCounts();
  const tr = $('deliveries').tBodies[0].querySelector(`tr[data-id="${CSS.escape(id)}"]`);
  if (!tr || state.inflight.has(id)) {
    refreshRow(id);
    return;
  }
  const view = JSON.parse(tr.dataset.view);
  const field = { sent: 'sentAt', confirmed: 'confirmedAt', failed: 'failedAt', expired: 'expiredAt' }[message.type];
  if (field) view[field] = message.at;
  // A late "sent" never takes a confirmed delivery back.
  const changed = !(message.type === 'sent' && RANK[view.status] > RANK.sent) && view.status !== message.status;
  if (changed) view.status = message.status;
  upsertRow(view);
  if (changed) announce(`Delivery ${shortId(id)} of ${view.contentName ?? 'a content'} is now ${view.status}.`);
}

async function reissueDelivery(id, button) {
  button.disabled = true;
  $('deliveries-error').textContent = '';
  $('deliveries-status').replaceChildren();
  try {
    const fresh = await api(`/api/deliveries/${encodeURIComponent(id)}/reissue`, { method: 'POST' });
    const { bundleUrl, ...view } = fresh;
    upsertRow(view);
    await refreshRow(id);
    scheduleCounts();
    // The button is gone with the old row's Re-issue: focus goes to the new delivery's row.
    document.querySelector(`#deliveries tr[data-id="${CSS.escape(fresh.id)}"]`)?.focus();
    // The manager sends the new bundle URL to the recipient (`dcx fetch <url>`).
    const link = el('a', 'bundle-url', bundleUrl);
    link.href = bundleUrl;
    $('deliveries-status').replaceChildren(`Delivery ${shortId(id)} re-issued as ${shortId(fresh.id)}. Its bundle, for dcx fetch: `, link);
  } catch (error) {
    button.disabled = false;
    $('deliveries-error').textContent = `Re-issue of ${shortId(id)} failed (${error.message}).`;
    if (error.status === 409) refreshRow(id);
  }
}

$('filters').addEventListener('submit', (event) => {
  event.preventDefault();
  clearTimeout(searchTimer);
  state.filters = readFilters();
  state.page = 1;
  loadDeliveries();
  loadCounts();
});
let searchTimer = null;
$('f-search').addEventListener('input', () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    state.filters = readFilters();
    state.page = 1;
    loadDeliveries();
  }, SEARCH_DELAY_MS);
});
$('filters').addEventListener('reset', () => {
  setTimeout(() => {
    state.filters = {};
    state.page = 1;
    loadDeliveries();
    loadCounts();
  });
});
$('prev').addEventListener('click', () => {
  state.page -= 1;
  loadDeliveries();
});
$('next').addEventListener('click', () => {
  state.page += 1;
  loadDeliveries();
});

// ---- details, under their row -------------------------------------------------------------------

/** The row that holds the details panel (made once from its template); it goes right under the delivery's row. */
let detailsTr = null;
function detailsRow() {
  if (!detailsTr) {
    detailsTr = el('tr', 'details-row');
    const cell = el('td', 'details-cell');
    cell.colSpan = 8;
    cell.append($('details-template').content.cloneNode(true));
    detailsTr.append(cell);
    cell.querySelector('#details').addEventListener('keydown', (event) => {
      if (event.key === 'Escape') closeDetails();
    });
    cell.querySelector('#details-close').addEventListener('click', () => closeDetails());
  }
  return detailsTr;
}

/** `tr`, after closing the details if they are open under it (the row is about to go). */
function closeIfShowing(tr) {
  if (tr.dataset.id === state.openDelivery) closeDetails({ focus: false });
  return tr;
}

function setExpanded(id, expanded) {
  const button = document.querySelector(`#deliveries tr[data-id="${CSS.escape(id ?? '')}"] .details-button`);
  button?.setAttribute('aria-expanded', String(expanded));
}

function toggleDetails(id) {
  if (state.openDelivery === id) closeDetails();
  else openDetails(id);
}

function closeDetails({ focus = true } = {}) {
  const id = state.openDelivery;
  state.openDelivery = null;
  detailsTr?.remove();
  setExpanded(id, false);
  if (focus) document.querySelector(`#deliveries tr[data-id="${CSS.escape(id ?? '')}"]`)?.focus();
}

/** Scrolls just enough to show the whole panel under its row, but never the row itself out of view. */
function reveal(tr, panel) {
  const overflow = panel.getBoundingClientRect().bottom - window.innerHeight + 16;
  if (overflow > 0) window.scrollBy({ top: Math.min(overflow, tr.getBoundingClientRect().top - 8) });
}

async function openDetails(id, { keepFocus = false } = {}) {
  const tr = document.querySelector(`#deliveries tbody tr[data-id="${CSS.escape(id)}"]`);
  if (!tr) return;
  const panel = detailsRow();
  if (tr.nextElementSibling !== panel) tr.after(panel);
  if (state.openDelivery !== id) {
    // Another delivery's facts never show under this row while its own are read.
    setExpanded(state.openDelivery, false);
    $('details-title').textContent = `Delivery ${shortId(id)}`;
    $('details-facts').replaceChildren();
    $('details-events').replaceChildren();
    $('details-receipt').hidden = true;
  }
  state.openDelivery = id;
  setExpanded(id, true);
  $('details-error').textContent = '';
  try {
    const view = await api(`/api/deliveries/${encodeURIComponent(id)}`);
    if (state.openDelivery !== id) return;
    $('details-title').textContent = `Delivery ${shortId(id)}`;
    const facts = [
      ['ID', view.id, 'digest'],
      ['Content', view.contentName ?? '(deleted)'],
      ['Content ID', view.contentId, 'digest'],
      ['Status', view.status],
      ['Client', view.clientFingerprint ?? 'anonymous', 'digest'],
      ['Requester IP', view.requesterIp ?? '—'],
      ['Bytes sent', formatBytes(view.bytesSent)],
      ['Expires', new Date(view.expiresAt).toLocaleString()],
      ...(view.failedAt ? [['Failed', new Date(view.failedAt).toLocaleString()]] : []),
      ...(view.expiredAt ? [['Expired', new Date(view.expiredAt).toLocaleString()]] : []),
      ...(view.reissuedFrom ? [['Re-issue of', view.reissuedFrom, 'digest']] : []),
      ...(view.reissuedAs ? [['Re-issued as', view.reissuedAs, 'digest']] : []),
      ['Confirmed from', view.confirmedFrom ?? '—'],
      ['Receipt', view.receipt ? 'signed receipt kept' : '—'],
    ];
    $('details-facts').replaceChildren(...facts.flatMap(([term, value, className]) => [el('dt', null, term), el('dd', className, value)]));
    const receipt = $('details-receipt');
    receipt.hidden = !view.receipt;
    receipt.href = receiptUrl(id);
    receipt.download = `${id}.receipt`;
    receipt.setAttribute('aria-label', `Download the receipt of delivery ${shortId(id)}`);
    $('details-events').replaceChildren(
      ...view.events.map((event) => {
        const item = el('li', `event event-${event.type}`);
        item.append(timeElement(event.at), ' ', el('strong', null, event.type));
        if (event.reason) item.append(` — ${event.reason}`);
        if (event.type === 'reissued' && event.detail?.newDeliveryId) item.append(` as ${event.detail.newDeliveryId}`);
        if (event.type === 'issued' && event.detail?.reissuedFrom) item.append(` as a re-issue of ${event.detail.reissuedFrom}`);
        if (event.remoteAddress) item.append(el('span', 'from', ` from ${event.remoteAddress}`));
        return item;
      }),
    );
    if (!keepFocus) {
      $('details-title').focus({ preventScroll: true });
      reveal(tr, panel);
    }
  } catch (error) {
    $('details-error').textContent = `Delivery ${shortId(id)} could not be loaded (${error.message}).`;
  }
}

// ---- counts -----------------------------------------------------------------------------------

let countsTimer = null;

function countsCaption() {
  const { from, to } = state.filters;
  const at = (iso) => new Date(iso).toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'short' });
  if (from && to) return `Deliveries issued from ${at(from)} until ${at(to)}, by status`;
  if (from) return `Deliveries issued from ${at(from)}, by status`;
  if (to) return `Deliveries issued until ${at(to)}, by status`;
  return 'All deliveries, by status';
}

function scheduleCounts() {
  clearTimeout(countsTimer);
  countsTimer = setTimeout(() => {
    loadCounts();
    loadCompletion();
  }, 500);
}

async function loadCounts() {
  $('counts-error').textContent = '';
  try {
    const range = new URLSearchParams(Object.entries(state.filters).filter(([name]) => name === 'from' || name === 'to')).toString();
    const counts = await api(`/api/deliveries/counts${range ? `?${range}` : ''}`);
    $('counts-caption').textContent = countsCaption();
    $('counts').tBodies[0].replaceChildren(
      ...counts.map((c) => {
        const tr = el('tr');
        const name = nameCell('th', null, c.contentName ?? '(deleted)', c.contentId);
        name.scope = 'row';
        tr.append(name, ...['issued', 'sent', 'confirmed', 'failed', 'expired', 'total'].map((k) => el('td', `num ${k}`, c[k] ?? 0)));
        return tr;
      }),
    );
  } catch (error) {
    $('counts').tBodies[0].replaceChildren();
    $('counts-error').textContent = `Counts are not available (${error.message}).`;
  }
}

// ---- contents ---------------------------------------------------------------------------------

async function loadContents() {
  $('contents-error').textContent = '';
  try {
    state.contents = await api('/api/contents');
  } catch (error) {
    $('contents-error').textContent = `Contents could not be loaded (${error.message}).`;
    return;
  }
  $('contents').tBodies[0].replaceChildren(
    ...state.contents.map((content) => {
      const tr = el('tr');
      tr.dataset.contentId = content.id;
      const name = nameCell('th', null, content.name, content.id);
      name.scope = 'row';
      const uploaded = el('td', 'uploaded');
      uploaded.append(timeElement(content.createdAt));
      const actions = el('td', 'actions');
      const remove = el('button', 'small danger', 'Delete');
      remove.type = 'button';
      remove.setAttribute('aria-label', `Delete ${content.name}`);
      remove.addEventListener('click', () => deleteContent(content));
      actions.append(remove);
      const recipients = el('td', 'completion');
      recipients.append(el('span', 'none', '—'));
      tr.append(name, el('td', 'num', formatBytes(content.size)), el('td', null, content.access), uploaded, recipients, actions);
      return tr;
    }),
  );
  loadCompletion();
  const select = $('f-content');
  const current = select.value;
  select.replaceChildren(
    el('option', null, 'any'),
    ...state.contents.map((c) => Object.assign(el('option', null, `${c.name} · ${shortId(c.id)}`), { value: c.id })),
  );
  select.options[0].value = '';
  select.value = current;
}

/** "12 of 40 received" in the contents table, for the contents sent to named recipients (distributions). */
async function loadCompletion() {
  let completion;
  try {
    completion = await api('/api/deliveries/completion');
  } catch (error) {
    $('contents-error').textContent = `Recipient counts are not available (${error.message}).`;
    return;
  }
  const byContent = new Map(completion.map((c) => [c.contentId, c]));
  for (const tr of $('contents').tBodies[0].rows) {
    const c = byContent.get(tr.dataset.contentId);
    const cell = tr.querySelector('td.completion');
    if (!c) {
      cell.replaceChildren(el('span', 'none', '—'));
      continue;
    }
    cell.replaceChildren(el('span', 'progress-text', `${c.received} of ${c.recipients} received`));
    cell.classList.toggle('complete', c.received === c.recipients);
  }
}

async function deleteContent(content) {
  if (!window.confirm(`Delete ${content.name}? Its delivery records stay.`)) return;
  try {
    await api(`/api/contents/${encodeURIComponent(content.id)}`, { method: 'DELETE' });
    $('upload-status').textContent = `${content.name} deleted.`;
    await loadContents();
    loadCounts();
    $('contents-title').focus(); // its Delete button is gone
  } catch (error) {
    $('contents-error').textContent = `${content.name} could not be deleted (${error.message}).`;
  }
}

$('upload').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target;
  const body = new FormData();
  // The access field first: the server reads fields before it streams the file.
  body.append('access', form.elements.access.value);
  body.append('file', form.elements.file.files[0]);
  $('upload-status').textContent = 'Uploading…';
  $('contents-error').textContent = '';
  try {
    const content = await api('/api/contents', { method: 'POST', body });
    $('upload-status').textContent = content.accessToken
      ? `${content.name} uploaded. Its access token, shown only now: ${content.accessToken}`
      : `${content.name} uploaded.`;
    form.reset();
    await loadContents();
    loadCounts();
  } catch (error) {
    $('upload-status').textContent = '';
    $('contents-error').textContent = `Upload failed (${error.message}).`;
  }
});

// ---- live events ------------------------------------------------------------------------------

function setLive(stateName, text) {
  const live = $('live-status');
  live.dataset.state = stateName;
  live.textContent = text;
}

function connectEvents() {
  if (state.events) return;
  state.events = subscribeDeliveryEvents({
    onMessage: applyEvent,
    onState: setLive,
    onResync: () => {
      loadDeliveries();
      loadCounts();
    },
  });
}

function disconnectEvents() {
  state.events?.();
  state.events = null;
}

// ---- start ------------------------------------------------------------------------------------

api('/api/session').then(
  () => showDashboard(),
  () => showLogin(),
);
