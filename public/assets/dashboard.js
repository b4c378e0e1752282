import { api, onUnauthorized, subscribeDeliveryEvents } from './admin-api.js';
import { el, fingerprintElement, formatBytes, timeElement } from './format.js';

const $ = (id) => document.getElementById(id);
const PAGE_SIZE = 50;
const RANK = { issued: 0, failed: 1, sent: 2, expired: 3, confirmed: 4 };

const state = {
  page: 1,
  total: 0,
  filters: {},
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

/** A table cell whose long text is cut with an ellipsis (table cells ignore max-width); the title holds it whole. */
function nameCell(tag, className, text) {
  const cell = el(tag, className);
  const inner = el('span', 'cut', text);
  inner.title = text;
  cell.append(inner);
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

function readFilters() {
  const form = $('filters');
  const filters = {};
  for (const name of ['status', 'contentId', 'clientId']) {
    const value = form.elements[name].value.trim();
    if (value) filters[name] = value;
  }
  for (const name of ['from', 'to']) {
    const value = form.elements[name].value;
    if (value) filters[name] = new Date(value).toISOString();
  }
  return filters;
}

function query(extra = {}) {
  return new URLSearchParams({ ...state.filters, ...extra }).toString();
}

function matchesFilters(view) {
  const f = state.filters;
  if (f.status && view.status !== f.status) return false;
  if (f.contentId && view.contentId !== f.contentId) return false;
  if (f.clientId && view.clientFingerprint !== f.clientId && view.requesterIp !== f.clientId) return false;
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
  details.addEventListener('click', () => openDetails(view.id));
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
    nameCell('td', 'content', view.contentName ?? '(deleted)'),
    clientCell(view),
    el('td', 'ip', view.requesterIp),
    issued,
    sent,
    confirmed,
    actionsCell(view),
  );
  tr.addEventListener('click', (event) => {
    if (!event.target.closest('button')) openDetails(view.id);
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
  tbody.querySelector('tr.empty')?.remove();
  tbody.prepend(row(view));
  state.total += 1;
  if (tbody.rows.length > PAGE_SIZE) tbody.rows[tbody.rows.length - 1].remove();
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
  return `Deliveries, newest first: ${state.total} in all`;
}

function updatePager() {
  const pages = Math.max(1, Math.ceil(state.total / PAGE_SIZE));
  $('page-info').textContent = `Page ${state.page} of ${pages}`;
  $('prev').disabled = state.page <= 1;
  $('next').disabled = state.page >= pages;
}

async function loadDeliveries() {
  $('deliveries-error').textContent = '';
  $('export').href = `/api/deliveries/export.csv${Object.keys(state.filters).length ? `?${query()}` : ''}`;
  try {
    const result = await api(`/api/deliveries?${query({ page: state.page, pageSize: PAGE_SIZE })}`);
    state.total = result.total;
    $('deliveries').tBodies[0].replaceChildren(...(result.items.length > 0 ? result.items.map(row) : [emptyRow()]));
    $('deliveries-caption').textContent = captionText();
    updatePager();
  } catch (error) {
    $('deliveries-error').textContent = `Deliveries could not be loaded (${error.message}).`;
  }
}

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
  state.filters = readFilters();
  state.page = 1;
  loadDeliveries();
  loadCounts();
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

// ---- details panel ----------------------------------------------------------------------------

async function openDetails(id, { keepFocus = false } = {}) {
  state.openDelivery = id;
  const panel = $('details');
  panel.hidden = false;
  $('details-error').textContent = '';
  try {
    const view = await api(`/api/deliveries/${encodeURIComponent(id)}`);
    if (state.openDelivery !== id) return;
    $('details-title').textContent = `Delivery ${shortId(id)}`;
    const facts = [
      ['ID', view.id, 'digest'],
      ['Content', view.contentName ?? view.contentId],
      ['Status', view.status],
      ['Client', view.clientFingerprint ?? 'anonymous', 'digest'],
      ['Requester IP', view.requesterIp],
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
    if (!keepFocus) $('details-title').focus();
  } catch (error) {
    $('details-error').textContent = `Delivery ${shortId(id)} could not be loaded (${error.message}).`;
  }
}

$('details').addEventListener('keydown', (event) => {
  if (event.key === 'Escape') $('details-close').click();
});
$('details-close').addEventListener('click', () => {
  const id = state.openDelivery;
  state.openDelivery = null;
  $('details').hidden = true;
  document.querySelector(`#deliveries tr[data-id="${CSS.escape(id ?? '')}"]`)?.focus();
});

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
  countsTimer = setTimeout(loadCounts, 500);
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
        const name = nameCell('th', null, c.contentName ?? c.contentId);
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
      const name = nameCell('th', null, content.name);
      name.scope = 'row';
      const uploaded = el('td');
      uploaded.append(timeElement(content.createdAt));
      const actions = el('td', 'actions');
      const remove = el('button', 'small danger', 'Delete');
      remove.type = 'button';
      remove.setAttribute('aria-label', `Delete ${content.name}`);
      remove.addEventListener('click', () => deleteContent(content));
      actions.append(remove);
      tr.append(name, el('td', 'num', formatBytes(content.size)), el('td', null, content.access), uploaded, actions);
      return tr;
    }),
  );
  const select = $('f-content');
  const current = select.value;
  select.replaceChildren(
    el('option', null, 'any'),
    ...state.contents.map((c) => Object.assign(el('option', null, c.name), { value: c.id })),
  );
  select.options[0].value = '';
  select.value = current;
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
