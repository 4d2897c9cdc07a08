// Every call to the server: JSON in and out, the session token as a bearer credential, and the
// server's error shape ({"error", "field"}) turned into an ApiError the screens show.

import { session, forget } from './session.js';

export class ApiError extends Error {
  constructor(status, message, field) {
    super(message);
    this.status = status;
    this.field = field;
  }
}

let onUnauthorized = () => {};

/** What to do when the server no longer knows the session (expired, logged out elsewhere). */
export function whenUnauthorized(f) {
  onUnauthorized = f;
}

/** Calls `path` with `method` and an optional JSON `body`; `query` entries that are empty are left out. */
export async function api(path, { method = 'GET', body, query } = {}) {
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') params.set(k, v);
    const qs = params.toString();
    if (qs) url += `?${qs}`;
  }
  const headers = { accept: 'application/json' };
  const s = session();
  if (s) headers.authorization = `Bearer ${s.token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401 && s) {
    forget();
    onUnauthorized();
  }
  if (response.status === 204) return null;
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, data?.error ?? response.statusText, data?.field);
  return data;
}
