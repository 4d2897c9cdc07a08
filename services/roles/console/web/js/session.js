// Who is logged in. The session token lives in sessionStorage: it ends with the tab and is not
// shared with other tabs; API calls send it as a bearer token. The login also set an HttpOnly
// cookie, which only the live event stream relies on (see live.js).

const KEY = 'sb.session';

/** {token, name, role, capabilities, expires_at_ms}, or null when nobody is logged in here. */
export function session() {
  const raw = sessionStorage.getItem(KEY);
  if (!raw) return null;
  const s = JSON.parse(raw);
  if (s.expires_at_ms <= Date.now()) {
    sessionStorage.removeItem(KEY);
    return null;
  }
  return s;
}

export function remember(s) {
  sessionStorage.setItem(KEY, JSON.stringify(s));
}

export function forget() {
  sessionStorage.removeItem(KEY);
}

/** Whether the logged-in role holds `capability` (read, work, admin, …) as the server said at login. */
export function can(capability) {
  const s = session();
  return Boolean(s && s.capabilities.includes(capability));
}
