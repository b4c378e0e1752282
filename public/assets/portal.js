import { el, formatBytes } from './format.js';

const list = document.getElementById('catalogue');
const status = document.getElementById('catalogue-status');

/** A file name as one shell word: as is when plain, else in single quotes. */
function shellWord(name) {
  return /^[A-Za-z0-9._+-]+$/.test(name) ? name : `'${name.replaceAll("'", "'\\''")}'`;
}

function entry(content) {
  const item = el('li', 'card');
  item.append(el('h2', 'name', content.name));

  const facts = el('dl', 'facts');
  for (const [term, value, className] of [
    ['Size', formatBytes(content.size)],
    ['Type', content.mediaType],
    ['SHA-256', content.sha256, 'digest'],
  ]) {
    facts.append(el('dt', null, term), el('dd', className, value));
  }
  item.append(facts);

  const bundleName = `${content.name}.dcx`;
  const link = el('a', 'button', `Download ${bundleName}`);
  // Same-origin path: works behind any proxy whatever PUBLIC_URL says.
  link.href = `/api/contents/${encodeURIComponent(content.id)}/bundle`;
  link.setAttribute('download', bundleName);
  item.append(link);

  const hint = el('p', 'hint');
  hint.append('Then run ', el('code', null, `dcx open ${shellWord(bundleName)} --out DIR`));
  item.append(hint);
  return item;
}

async function load() {
  try {
    const response = await fetch('/api/catalogue', { headers: { accept: 'application/json' } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const contents = await response.json();
    list.replaceChildren(...contents.map(entry));
    status.textContent =
      contents.length === 0
        ? 'Nothing to download yet.'
        : `${contents.length} ${contents.length === 1 ? 'content' : 'contents'} available.`;
  } catch (error) {
    status.textContent = `The catalogue could not be loaded (${error.message}).`;
    status.classList.add('error');
  }
}

load();
