import { api, startAdminPage, subscribeDeliveryEvents, throttle } from './admin-api.js';
import { el, fingerprintElement, timeElement } from './format.js';

const $ = (id) => document.getElementById(id);
const PAGE_SIZE = 100;
const COUNT_COLUMNS = ['total', 'confirmed', 'unconfirmed', 'pending', 'issued', 'sent', 'failed', 'expired', 'withdrawn', 'overdue'];
// A new pending delivery supersedes these (the contract); a pending one is left as it is.
const RESENDABLE = new Set(['issued', 'sent', 'failed', 'expired']);
const FILTER_CAPTIONS = {
  unconfirmed: 'Not yet received',
  overdue: 'Overdue: not received by the due date',
  '': 'Every recipient',
};

const state = {
  /** The open distribution's id, from the URL's hash; null: the list. */
  openId: null,
  distribution: null,
  /** Rows shown, and their delivery ids: a live event for one of them concerns the open distribution. */
  rows: [],
  deliveryIds: new Set(),
  next: null,
};

const distributionPath = (id, rest = '') => `/api/distributions/${encodeURIComponent(id)}${rest}`;
const contentName = (d) => d.content?.name ?? d.contentName ?? d.contentId ?? 'content';

function announce(text) {
  const announcer = $('announcer');
  announcer.textContent = '';
  // A fresh text node each time, so screen readers repeat identical announcements.
  setTimeout(() => (announcer.textContent = text), 50);
}

const pastDue = (distribution) => Boolean(distribution.dueAt) && new Date(distribution.dueAt) < new Date();

/** The contract's overdue: the due date has passed and this recipient's current delivery is neither confirmed nor withdrawn. */
function isOverdue(distribution, status) {
  return pastDue(distribution) && status !== 'confirmed' && status !== 'withdrawn';
}

function stateText(d) {
  if (d.cancelledAt) return 'cancelled';
  if (d.completedAt) return 'completed';
  if (pastDue(d)) return 'overdue';
  return 'open';
}

/** "1 of 2" with a bar: the share of recipients who confirmed. */
function progressCell(counts) {
  const cell = el('td', 'progress-cell');
  const bar = el('progress');
  bar.max = Math.max(1, counts.total);
  bar.value = counts.confirmed;
  const text = el('span', 'progress-text', `${counts.confirmed} of ${counts.total}`);
  text.id = `p-${crypto.randomUUID()}`;
  bar.setAttribute('aria-labelledby', text.id);
  cell.append(bar, text);
  return cell;
}

// ---- the list ---------------------------------------------------------------------------------

async function loadList() {
  $('list-error').textContent = '';
  try {
    const answer = await api('/api/distributions');
    const items = Array.isArray(answer) ? answer : answer.items;
    $('distributions').tBodies[0].replaceChildren(...(items.length ? items.map(listRow) : [emptyRow(7, 'No distributions yet.')]));
  } catch (error) {
    $('list-error').textContent = `Distributions could not be loaded (${error.message}).`;
  }
}

function listRow(d) {
  const tr = el('tr');
  tr.dataset.id = d.id;
  const name = el('th', null, contentName(d));
  name.scope = 'row';
  const created = el('td');
  created.append(timeElement(d.createdAt));
  const due = el('td');
  due.append(timeElement(d.dueAt));
  const stateName = stateText(d);
  const actions = el('td', 'actions');
  const open = el('a', 'button small secondary', 'Open');
  open.href = `#${encodeURIComponent(d.id)}`;
  open.setAttribute('aria-label', `Open the distribution of ${contentName(d)} created ${new Date(d.createdAt).toLocaleString()}`);
  actions.append(open);
  tr.append(
    name,
    el('td', 'note', d.note ?? ''),
    created,
    due,
    el('td', `state state-${stateName}`, stateName),
    progressCell(d.counts),
    actions,
  );
  return tr;
}

function emptyRow(columns, text) {
  const tr = el('tr', 'empty');
  const cell = el('td', 'none', text);
  cell.colSpan = columns;
  tr.append(cell);
  return tr;
}

// ---- one distribution -------------------------------------------------------------------------

function filterStatus() {
  return $('f-status').value;
}

/** Loads the open distribution: counts and the first `limit` rows of the filtered list. */
async function loadDetail({ limit = PAGE_SIZE } = {}) {
  const id = state.openId;
  const status = filterStatus();
  const query = new URLSearchParams({ limit: String(limit), ...(status ? { status } : {}) });
  try {
    const d = await api(`${distributionPath(id)}?${query}`);
    if (state.openId !== id || filterStatus() !== status) return; // the manager moved on meanwhile
    $('detail-error').textContent = '';
    state.distribution = d;
    state.rows = d.recipients.items;
    state.next = d.recipients.next;
    renderDetail();
  } catch (error) {
    $('detail-error').textContent = `The distribution could not be loaded (${error.message}).`;
  }
}

async function loadMore() {
  const id = state.openId;
  const status = filterStatus();
  const query = new URLSearchParams({ limit: String(PAGE_SIZE), after: state.next, ...(status ? { status } : {}) });
  try {
    const d = await api(`${distributionPath(id)}?${query}`);
    if (state.openId !== id || filterStatus() !== status) return;
    state.distribution = d;
    state.rows = [...state.rows, ...d.recipients.items];
    state.next = d.recipients.next;
    renderDetail();
  } catch (error) {
    $('detail-error').textContent = `More recipients could not be loaded (${error.message}).`;
  }
}

function renderDetail() {
  const d = state.distribution;
  const c = d.counts;
  $('detail-title').textContent = `Distribution of ${contentName(d)}`;
  const facts = [
    ['Created', timeElement(d.createdAt)],
    ['Due', timeElement(d.dueAt)],
    ['State', stateText(d)],
    ...(d.note ? [['Note', d.note]] : []),
    ...(d.cancelledAt ? [['Cancelled', timeElement(d.cancelledAt)]] : []),
    ...(d.completedAt ? [['Completed', timeElement(d.completedAt)]] : []),
  ];
  $('facts').replaceChildren(
    ...facts.flatMap(([term, value]) => {
      const dd = el('dd');
      dd.append(value);
      return [el('dt', null, term), dd];
    }),
  );
  $('progress').max = Math.max(1, c.total);
  $('progress').value = c.confirmed;
  $('progress-text').textContent = `${c.confirmed} of ${c.total} confirmed receipt`;
  const counts = el('tr');
  counts.append(...COUNT_COLUMNS.map((name) => el('td', `num ${name}`, c[name] ?? 0)));
  $('counts').tBodies[0].replaceChildren(counts);

  const cancelled = Boolean(d.cancelledAt);
  $('resend-all').disabled = cancelled || c.unconfirmed === 0;
  $('cancel-area').hidden = cancelled;
  const status = filterStatus();
  $('csv').href = `${distributionPath(d.id, '/recipients.csv')}${status ? `?status=${encodeURIComponent(status)}` : ''}`;
  $('evidence').href = distributionPath(d.id, '/evidence.zip');

  $('recipients-caption').textContent = `${FILTER_CAPTIONS[status] ?? `Status ${status}`}: ${state.rows.length}${state.next ? '+' : ''}`;
  state.deliveryIds = new Set(state.rows.map((r) => r.deliveryId));
  const hadFocus = document.activeElement?.closest('#recipients tr')?.dataset.recipientId;
  $('recipients').tBodies[0].replaceChildren(
    ...(state.rows.length ? state.rows.map((r) => recipientRow(d, r)) : [emptyRow(7, 'Nobody in this list.')]),
  );
  // A refresh replaces the rows: keep the keyboard where it was.
  if (hadFocus) document.querySelector(`#recipients tr[data-recipient-id="${CSS.escape(hadFocus)}"] button`)?.focus();
  $('more').hidden = !state.next;
}

function recipientRow(d, r) {
  const overdue = isOverdue(d, r.status);
  const tr = el('tr', overdue ? 'overdue' : null);
  tr.dataset.recipientId = r.recipientId;
  tr.dataset.deliveryId = r.deliveryId;
  const name = el('th', null, r.name);
  name.scope = 'row';
  const status = el('td', 'status');
  status.append(el('span', `badge status-${r.status}`, r.status));
  if (overdue) status.append(' ', el('span', 'badge overdue-badge', 'overdue'));
  const installation = el('td', 'installation');
  if (r.fingerprint) {
    installation.append(fingerprintElement(r.fingerprint));
  } else {
    installation.append(el('span', 'none', 'not pulled yet'));
  }
  const sent = el('td', 'sent');
  sent.append(timeElement(r.sentAt));
  const confirmed = el('td', 'confirmed');
  confirmed.append(timeElement(r.confirmedAt));
  const actions = el('td', 'actions');
  if (!d.cancelledAt && RESENDABLE.has(r.status)) {
    const resend = el('button', 'small', 'Re-send');
    resend.type = 'button';
    resend.setAttribute('aria-label', `Re-send to ${r.name}`);
    resend.addEventListener('click', () => resendOne(r, resend));
    actions.append(resend);
  }
  tr.append(name, el('td', 'email', r.email ?? ''), status, installation, sent, confirmed, actions);
  return tr;
}

async function resendOne(recipient, button) {
  button.disabled = true;
  await post(distributionPath(state.openId, '/resend'), { recipientId: recipient.recipientId }, `Re-sent to ${recipient.name}.`);
}

/** A POST on the open distribution, then a fresh view; the outcome in the status line. */
async function post(path, body, done) {
  $('detail-error').textContent = '';
  $('detail-status').textContent = '';
  try {
    await api(path, { method: 'POST', json: body });
    $('detail-status').textContent = done;
  } catch (error) {
    $('detail-error').textContent = `${done.replace(/\.$/, '')} failed (${error.message}).`;
  }
  await loadDetail({ limit: Math.max(PAGE_SIZE, state.rows.length) });
}

$('resend-all').addEventListener('click', () =>
  post(distributionPath(state.openId, '/resend'), {}, 'Re-sent to every unconfirmed recipient.'),
);

// Cancelling withdraws deliveries: a second, explicit click.
$('cancel').addEventListener('click', () => {
  $('cancel').hidden = true;
  $('cancel-confirm').hidden = false;
  $('cancel-no').focus();
});
function closeCancel() {
  $('cancel-confirm').hidden = true;
  $('cancel').hidden = false;
}
$('cancel-no').addEventListener('click', () => {
  closeCancel();
  $('cancel').focus();
});
$('cancel-yes').addEventListener('click', async () => {
  closeCancel();
  await post(distributionPath(state.openId, '/cancel'), undefined, 'Distribution cancelled.');
  $('detail-title').focus();
});

$('f-status').addEventListener('change', () => loadDetail());
$('filter').addEventListener('submit', (event) => event.preventDefault());
$('more').addEventListener('click', loadMore);

// ---- navigation: #<id> opens one distribution --------------------------------------------------

function route() {
  const id = decodeURIComponent(location.hash.slice(1)) || null;
  state.openId = id;
  $('list').hidden = id !== null;
  $('detail').hidden = id === null;
  $('detail-status').textContent = '';
  $('detail-error').textContent = '';
  closeCancel();
  if (id === null) {
    state.distribution = null;
    state.deliveryIds = new Set();
    loadList().then(() => $('list-title').focus());
  } else {
    $('f-status').value = 'unconfirmed';
    $('recipients').tBodies[0].replaceChildren();
    loadDetail().then(() => $('detail-title').focus());
  }
}
window.addEventListener('hashchange', route);

// ---- live updates -----------------------------------------------------------------------------

// At most one refresh a second however many confirmations arrive; each reloads as many rows as are shown.
const refreshDetail = throttle(() => state.openId && loadDetail({ limit: Math.max(PAGE_SIZE, state.rows.length) }), 1000);
const refreshList = throttle(() => state.openId === null && loadList(), 2000);

function applyEvent(message) {
  if (!message.deliveryId || !message.status) return; // a refusal changes no status
  if (state.openId === null) {
    refreshList();
    return;
  }
  // Events name a delivery, not its distribution: one of the shown rows is ours; any other delivery may be
  // ours only if some rows of the distribution are not shown (a filter, or more pages).
  const shown = state.deliveryIds.has(message.deliveryId);
  const everyRowShown = filterStatus() === '' && !state.next;
  if (!shown && everyRowShown) return;
  if (shown && message.type === 'confirmed') {
    const row = state.rows.find((r) => r.deliveryId === message.deliveryId);
    announce(`${row.name} confirmed receipt.`);
  }
  refreshDetail();
}

function setLive(name, text) {
  $('live-status').dataset.state = name;
  $('live-status').textContent = text;
}

startAdminPage(() => {
  subscribeDeliveryEvents({ onMessage: applyEvent, onState: setLive, onResync: () => (state.openId ? refreshDetail() : refreshList()) });
  route();
});
