import { api, startAdminPage } from './admin-api.js';
import { el, fingerprintElement, splitList, timeElement } from './format.js';

const $ = (id) => document.getElementById(id);
const PAGE_SIZE = 100;

const state = { query: {}, next: null, open: new Set() };

function announce(text) {
  const announcer = $('announcer');
  announcer.textContent = '';
  // A fresh text node each time, so screen readers repeat identical announcements.
  setTimeout(() => (announcer.textContent = text), 50);
}

function button(text, className, label, onClick) {
  const b = el('button', className, text);
  b.type = 'button';
  if (label) b.setAttribute('aria-label', label);
  b.addEventListener('click', onClick);
  return b;
}

// ---- enrolment codes --------------------------------------------------------------------------

/** Makes a code and shows it with the command to run; the server keeps only its digest, so this is the one time it is seen. */
async function makeCode(body, forWhom) {
  $('code-error').textContent = '';
  try {
    const created = await api('/api/recipients/enrolment-codes', { method: 'POST', json: body });
    $('code-for').textContent = forWhom;
    $('code-value').textContent = created.code;
    $('code-expires').replaceChildren(timeElement(created.expiresAt));
    // The origin the manager reaches the server at; the recipient's dcx pins it on enrolment.
    $('code-command').textContent = `dcx enrol ${location.origin} --code ${created.code}`;
    $('code-copied').textContent = '';
    $('code-once').hidden = false;
    $('code-once').focus();
    return true;
  } catch (error) {
    $('code-error').textContent = `No code was made (${error.message}).`;
    return false;
  }
}

$('code-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target;
  const name = form.elements.name.value.trim();
  const email = form.elements.email.value.trim();
  const labels = splitList(form.elements.labels.value);
  const body = {
    expiresIn: form.elements.expiresIn.value,
    ...(name ? { name } : {}),
    ...(email ? { email } : {}),
    ...(labels.length ? { labels } : {}),
  };
  if (await makeCode(body, name ? `For ${name}.` : 'For a new recipient.')) form.reset();
});

$('code-copy').addEventListener('click', async () => {
  try {
    await navigator.clipboard.writeText($('code-command').textContent);
    $('code-copied').textContent = 'Copied.';
  } catch {
    // No clipboard permission (plain HTTP, or refused): select the text so that Ctrl+C copies it.
    getSelection().selectAllChildren($('code-command'));
    $('code-copied').textContent = 'Selected: press Ctrl+C to copy.';
  }
});

$('code-hide').addEventListener('click', () => {
  $('code-value').textContent = '';
  $('code-command').textContent = '';
  $('code-once').hidden = true;
  $('enrol-title').setAttribute('tabindex', '-1');
  $('enrol-title').focus();
});

// ---- the list ---------------------------------------------------------------------------------

async function loadRecipients({ append = false } = {}) {
  $('list-error').textContent = '';
  const query = new URLSearchParams({ limit: String(PAGE_SIZE), ...state.query, ...(append ? { after: state.next } : {}) });
  try {
    const page = await api(`/api/recipients?${query}`);
    const rows = page.items.flatMap(recipientRows);
    const tbody = $('recipients').tBodies[0];
    if (append) tbody.append(...rows);
    else tbody.replaceChildren(...(rows.length ? rows : [emptyRow()]));
    state.next = page.next;
    $('more').hidden = !page.next;
    // Rows that were open before a reload are opened again.
    for (const recipient of page.items) if (state.open.has(recipient.id)) loadInstallations(recipient);
  } catch (error) {
    $('list-error').textContent = `Recipients could not be loaded (${error.message}).`;
  }
}

function emptyRow() {
  const tr = el('tr', 'empty');
  const cell = el('td', 'none', Object.keys(state.query).length ? 'No recipient matches.' : 'No recipients yet: make an enrolment code.');
  cell.colSpan = 6;
  tr.append(cell);
  return tr;
}

/** A recipient's row, and the row below it that shows its installations when opened. */
function recipientRows(r) {
  const tr = el('tr');
  tr.dataset.id = r.id;
  const name = el('th', null, r.name);
  name.scope = 'row';
  const seen = el('td');
  seen.append(timeElement(r.lastSeenAt));
  const actions = el('td', 'actions');
  const toggle = button('Installations', 'small secondary', `Installations of ${r.name}`, () => {
    if (state.open.has(r.id)) closeInstallations(r.id);
    else loadInstallations(r);
  });
  toggle.setAttribute('aria-expanded', 'false');
  toggle.setAttribute('aria-controls', `inst-${r.id}`);
  toggle.className += ' toggle';
  const another = button('New code', 'small secondary', `New code for another installation of ${r.name}`, () =>
    makeCode({ recipientId: r.id, expiresIn: $('c-expires').value }, `For another installation of ${r.name}.`),
  );
  actions.append(toggle, another);
  tr.append(
    name,
    el('td', 'email', r.email ?? ''),
    el('td', 'labels', r.labels.join(', ')),
    el('td', 'num', r.activeInstallations),
    seen,
    actions,
  );

  const detail = el('tr', 'installations-row');
  detail.id = `inst-${r.id}`;
  detail.hidden = true;
  const cell = el('td', 'installations-cell');
  cell.colSpan = 6;
  detail.append(cell);
  return [tr, detail];
}

function closeInstallations(id) {
  state.open.delete(id);
  const detail = document.getElementById(`inst-${id}`);
  if (detail) detail.hidden = true;
  document.querySelector(`#recipients tr[data-id="${CSS.escape(id)}"] .toggle`)?.setAttribute('aria-expanded', 'false');
}

async function loadInstallations(r) {
  state.open.add(r.id);
  const detail = document.getElementById(`inst-${r.id}`);
  const cell = detail.cells[0];
  detail.hidden = false;
  document.querySelector(`#recipients tr[data-id="${CSS.escape(r.id)}"] .toggle`)?.setAttribute('aria-expanded', 'true');
  try {
    const full = await api(`/api/recipients/${encodeURIComponent(r.id)}`);
    cell.replaceChildren(installationsTable(full));
  } catch (error) {
    cell.replaceChildren(el('p', 'error', `Installations could not be loaded (${error.message}).`));
  }
}

function installationsTable(recipient) {
  if (recipient.installations.length === 0) return el('p', 'none', 'No installation enrolled yet.');
  const table = el('table', 'installations');
  const caption = el('caption', null, `Installations of ${recipient.name}`);
  const head = el('tr');
  head.append(
    ...['Fingerprint', 'Enrolled', 'From', 'Last seen', 'Revoked', 'Actions'].map((text) =>
      Object.assign(el('th', null, text), { scope: 'col' }),
    ),
  );
  const thead = el('thead');
  thead.append(head);
  const tbody = el('tbody');
  tbody.append(...recipient.installations.map((i) => installationRow(recipient, i)));
  table.append(caption, thead, tbody);
  return table;
}

function installationRow(recipient, installation) {
  const tr = el('tr');
  tr.dataset.fingerprint = installation.fingerprint;
  const fingerprint = el('th');
  fingerprint.scope = 'row';
  fingerprint.append(fingerprintElement(installation.fingerprint));
  const cells = [installation.enrolledAt, null, installation.lastSeenAt].map((at) => {
    const td = el('td');
    if (at !== null) td.append(timeElement(at));
    return td;
  });
  cells[1].textContent = installation.enrolledFrom ?? '—';
  const revoked = el('td', installation.revokedAt ? 'revoked' : 'none');
  if (installation.revokedAt) revoked.append('revoked ', timeElement(installation.revokedAt));
  else revoked.textContent = 'active';
  const actions = el('td', 'actions');
  if (!installation.revokedAt) actions.append(revokeControl(recipient, installation));
  tr.append(fingerprint, ...cells, revoked, actions);
  return tr;
}

/** Revoke, then a second, explicit click: a revoked installation can no longer pull or confirm. */
function revokeControl(recipient, installation) {
  const short = installation.fingerprint.slice(0, 12);
  const wrap = el('span', 'revoke');
  const ask = button('Revoke…', 'small danger', `Revoke installation ${short} of ${recipient.name}`, () => {
    ask.hidden = true;
    confirmBox.hidden = false;
    no.focus();
  });
  const confirmBox = el('span', 'revoke-confirm');
  confirmBox.hidden = true;
  const question = el('span', null, `Revoke ${short}…? It will be refused from now on. `);
  const yes = button('Yes, revoke', 'small danger', null, async () => {
    try {
      await api(`/api/recipients/installations/${encodeURIComponent(installation.fingerprint)}/revoke`, { method: 'POST' });
      $('list-status').textContent = `Installation ${short} of ${recipient.name} revoked.`;
      announce(`Installation ${short} revoked.`);
      await loadInstallations(recipient);
      document.querySelector(`#recipients tr[data-id="${CSS.escape(recipient.id)}"] .toggle`)?.focus();
    } catch (error) {
      $('list-error').textContent = `The installation could not be revoked (${error.message}).`;
    }
  });
  const no = button('Keep it', 'small secondary', null, () => {
    confirmBox.hidden = true;
    ask.hidden = false;
    ask.focus();
  });
  confirmBox.append(question, yes, ' ', no);
  wrap.append(ask, confirmBox);
  return wrap;
}

$('search').addEventListener('submit', (event) => {
  event.preventDefault();
  const search = $('s-search').value.trim();
  const label = $('s-label').value.trim();
  state.query = { ...(search ? { search } : {}), ...(label ? { label } : {}) };
  loadRecipients();
});
$('search').addEventListener('reset', () =>
  setTimeout(() => {
    state.query = {};
    loadRecipients();
  }),
);
$('more').addEventListener('click', () => loadRecipients({ append: true }));

startAdminPage(() => loadRecipients());
