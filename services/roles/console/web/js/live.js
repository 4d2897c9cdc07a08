// The live feed: one EventSource on /v1/events for the whole console. EventSource cannot send an
// Authorization header, so the stream is authenticated by the HttpOnly session cookie the login
// set (the server's events.rs says why that beats a token in the URL). Screens subscribe to rows
// and to `resync`, which also fires after every reconnect, since changes may have passed meanwhile.

const rowListeners = new Set();
const resyncListeners = new Set();
const statusListeners = new Set();
let source = null;
let connectedOnce = false;

function setStatus(status) {
  for (const f of statusListeners) f(status);
}

export function connect() {
  if (source) return;
  source = new EventSource('/v1/events');
  source.addEventListener('hello', () => {
    setStatus('live');
    if (connectedOnce) for (const f of resyncListeners) f();
    connectedOnce = true;
  });
  source.addEventListener('ticket', (event) => {
    const row = JSON.parse(event.data);
    for (const f of rowListeners) f(row);
  });
  source.addEventListener('resync', () => {
    for (const f of resyncListeners) f();
  });
  source.addEventListener('error', () => setStatus(source && source.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting'));
}

export function disconnect() {
  if (source) source.close();
  source = null;
  connectedOnce = false;
  setStatus('closed');
}

/** Calls `onRow(row)` for every changed ticket and `onResync()` when the view should reload; returns the unsubscribe. */
export function subscribe(onRow, onResync = () => {}) {
  rowListeners.add(onRow);
  resyncListeners.add(onResync);
  return () => {
    rowListeners.delete(onRow);
    resyncListeners.delete(onResync);
  };
}

export function onStatus(f) {
  statusListeners.add(f);
}

/** `f` at most once per `ms`, the last call winning: for reloads triggered by a burst of events. */
export function throttle(f, ms) {
  let timer = null;
  return () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      f();
    }, ms);
  };
}
