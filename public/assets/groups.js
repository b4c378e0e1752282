import { api, startAdminPage } from './admin-api.js';
import { el, splitList, timeElement } from './format.js';

const $ = (id) => document.getElementById(id);

/** Recipients ticked as members, kept across searches (a search replaces the checkboxes shown). */
const chosen = new Map();

async function loadCandidates() {
  const search = $('g-search').value.trim();
  const query = new URLSearchParams({ limit: '50', ...(search ? { search } : {}) });
  const fieldset = $('g-members');
  const legend = fieldset.querySelector('legend');
  try {
    const page = await api(`/api/recipients?${query}`);
    const shown = new Map(page.items.map((r) => [r.id, r]));
    for (const [id, r] of chosen) if (!shown.has(id)) shown.set(id, r);
    const boxes = [...shown.values()].map((r) => {
      const label = el('label');
      const box = el('input');
      box.type = 'checkbox';
      box.value = r.id;
      box.checked = chosen.has(r.id);
      box.addEventListener('change', () => (box.checked ? chosen.set(r.id, r) : chosen.delete(r.id)));
      label.append(box, `${r.name}${r.email ? ` <${r.email}>` : ''}`);
      return label;
    });
    fieldset.replaceChildren(legend, ...(boxes.length ? boxes : [el('p', 'none', 'No recipient matches.')]));
  } catch (error) {
    fieldset.replaceChildren(legend, el('p', 'error', `Recipients could not be loaded (${error.message}).`));
  }
}

let searchTimer = null;
$('g-search').addEventListener('input', () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(loadCandidates, 250);
});
// Enter in the search field searches; it does not create the group.
$('g-search').addEventListener('keydown', (event) => {
  if (event.key === 'Enter') {
    event.preventDefault();
    loadCandidates();
  }
});

$('group-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target;
  const name = form.elements.name.value.trim();
  const labels = splitList(form.elements.labels.value);
  const members = [...chosen.keys()];
  $('group-error').textContent = '';
  $('group-status').textContent = '';
  if (members.length === 0 && labels.length === 0) {
    $('group-error').textContent = 'Choose members, or labels, or both.';
    return;
  }
  try {
    await api('/api/groups', {
      method: 'POST',
      json: { name, ...(members.length ? { members } : {}), ...(labels.length ? { selector: { labels } } : {}) },
    });
    $('group-status').textContent = `Group ${name} created.`;
    form.reset();
    chosen.clear();
    await Promise.all([loadGroups(), loadCandidates()]);
  } catch (error) {
    $('group-error').textContent = `The group was not created (${error.message}).`;
  }
});

async function loadGroups() {
  $('list-error').textContent = '';
  try {
    const answer = await api('/api/groups');
    const groups = Array.isArray(answer) ? answer : answer.items;
    $('groups').tBodies[0].replaceChildren(...(groups.length ? groups.map(groupRow) : [emptyRow()]));
  } catch (error) {
    $('list-error').textContent = `Groups could not be loaded (${error.message}).`;
  }
}

function emptyRow() {
  const tr = el('tr', 'empty');
  const cell = el('td', 'none', 'No groups yet.');
  cell.colSpan = 5;
  tr.append(cell);
  return tr;
}

function groupRow(group) {
  const tr = el('tr');
  tr.dataset.id = group.id;
  const name = el('th', null, group.name);
  name.scope = 'row';
  const created = el('td');
  created.append(timeElement(group.createdAt));
  const actions = el('td', 'actions');
  const show = el('button', 'small secondary', 'Members');
  show.type = 'button';
  show.setAttribute('aria-label', `Members of ${group.name}`);
  show.addEventListener('click', () => showMembers(group, tr));
  actions.append(show);
  tr.append(
    name,
    el('td', 'num', `${group.memberCount} named, ${group.resolvedCount} now`),
    el('td', 'labels', group.selector?.labels?.join(', ') ?? ''),
    created,
    actions,
  );
  return tr;
}

/** The group resolved now (named members and the recipients its labels select), in a row below it. */
async function showMembers(group, tr) {
  const id = `members-${group.id}`;
  document.getElementById(id)?.remove();
  const row = el('tr', 'installations-row');
  row.id = id;
  const cell = el('td', 'installations-cell');
  cell.colSpan = 5;
  row.append(cell);
  tr.after(row);
  try {
    const resolved = await api(`/api/groups/${encodeURIComponent(group.id)}`);
    const list = el('ul');
    list.setAttribute('aria-label', `Members of ${group.name}`);
    list.append(...resolved.members.map((m) => el('li', null, `${m.name}${m.email ? ` <${m.email}>` : ''}`)));
    cell.replaceChildren(resolved.members.length ? list : el('p', 'none', 'Nobody is in this group now.'));
  } catch (error) {
    cell.replaceChildren(el('p', 'error', `Members could not be loaded (${error.message}).`));
  }
}

startAdminPage(() => {
  loadGroups();
  loadCandidates();
});
