// The admin pages' one way of talking to the server: JSON fetches with the session cookie, and the live event stream.

export class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let unauthorized = () => {};

/** What a page does when a request answers 401 (its session ended): the dashboard shows its login form. */
export function onUnauthorized(callback) {
  unauthorized = callback;
}

/** fetch for the admin API: the session cookie goes along (same origin); errors become one line. */
export async function api(path, init = {}) {
  const json = init.json !== undefined;
  const { json: body, ...rest } = init;
  const response = await fetch(path, {
    ...rest,
    ...(json ? { body: JSON.stringify(body) } : {}),
    headers: { accept: 'application/json', ...(json ? { 'content-type': 'application/json' } : {}), ...(init.headers ?? {}) },
  });
  if (response.status === 401 && path !== '/api/session') unauthorized();
  if (!response.ok) {
    let message = response.statusText;
    try {
      const answer = await response.json();
      message = Array.isArray(answer.message) ? answer.message.join('; ') : (answer.message ?? message);
    } catch {
      // not JSON
    }
    throw new HttpError(response.status, `HTTP ${response.status}: ${message}`);
  }
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/**
 * Subscribes to /api/events/deliveries. `onState(name, text)` gets 'connecting' | 'live' | 'off';
 * `onResync()` runs when the stream comes back after a drop (events may have been missed meanwhile).
 * After the server closed the stream, it reconnects in 5 s if the session is still valid. Returns a close function.
 */
export function subscribeDeliveryEvents({ onMessage, onState = () => {}, onResync = () => {} }) {
  let source = null;
  let closed = false;
  let timer = null;
  const connect = () => {
    if (closed) return;
    source = new EventSource('/api/events/deliveries');
    let dropped = false;
    source.addEventListener('open', () => {
      onState('live', 'Live updates: on');
      if (dropped) onResync();
      dropped = false;
    });
    source.addEventListener('delivery', (event) => onMessage(JSON.parse(event.data)));
    source.addEventListener('error', async () => {
      dropped = true;
      if (source.readyState !== EventSource.CLOSED) {
        onState('connecting', 'Live updates: reconnecting…');
        return;
      }
      onState('off', 'Live updates: off');
      try {
        await api('/api/session');
        timer = setTimeout(connect, 5000);
      } catch {
        // a 401 went to onUnauthorized
      }
    });
  };
  connect();
  return () => {
    closed = true;
    clearTimeout(timer);
    source?.close();
  };
}

/** Runs `task` at most once per `ms`: a call during the wait schedules one more run at its end, never more. */
export function throttle(task, ms) {
  let last = 0;
  let timer = null;
  return () => {
    if (timer) return;
    const wait = Math.max(0, last + ms - Date.now());
    timer = setTimeout(() => {
      timer = null;
      last = Date.now();
      task();
    }, wait);
  };
}

/**
 * The shell of the admin pages other than /admin (which has the login form): checks the session, then runs
 * `start()`; without a session (or when one ends) the page shows a link to log in at /admin instead.
 */
export function startAdminPage(start) {
  const $ = (id) => document.getElementById(id);
  const signedOut = (message) => {
    $('boot-status').hidden = true;
    $('page').hidden = true;
    $('logout').hidden = true;
    $('signed-out-message').textContent = message;
    $('signed-out').hidden = false;
  };
  onUnauthorized(() => signedOut('Your session has ended.'));
  $('logout').addEventListener('click', async () => {
    try {
      await api('/api/session', { method: 'DELETE' });
    } finally {
      signedOut('You are logged out.');
    }
  });
  api('/api/session').then(
    () => {
      $('boot-status').hidden = true;
      $('signed-out').hidden = true;
      $('page').hidden = false;
      $('logout').hidden = false;
      start();
    },
    () => signedOut('You are not logged in.'),
  );
}
