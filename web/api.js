// The HTTP client of the page. The access token lives in memory only and is
// renewed with the refresh grant shortly before it expires and once on a 401;
// the refresh token is kept in sessionStorage (this tab only), so a reload
// keeps the session. Nothing goes into cookies or URLs.

const REFRESH_KEY = 'todo-api.refresh_token';

let access = null; // { token, expiresAt }
let timer = null;
let refreshing = null;
let onEnd = () => {};

export class ApiError extends Error {
  constructor(status, message, { ended = false } = {}) {
    super(message);
    this.status = status;
    /** The session is over; the page has already gone back to the sign-in form. */
    this.ended = ended;
  }
}

/** `fn(message)` is called when the session ends by itself (revoked, expired). */
export function onSessionEnd(fn) {
  onEnd = fn;
}

export function hasSession() {
  return sessionStorage.getItem(REFRESH_KEY) !== null;
}

function forget() {
  access = null;
  clearTimeout(timer);
  timer = null;
  sessionStorage.removeItem(REFRESH_KEY);
}

function end(message) {
  forget();
  onEnd(message);
  return new ApiError(401, message, { ended: true });
}

async function send(url, init) {
  try {
    return await fetch(url, { cache: 'no-store', ...init });
  } catch {
    throw new ApiError(0, 'Cannot reach the server. Check the connection and try again.');
  }
}

async function bodyOf(response) {
  const type = response.headers.get('Content-Type') ?? '';
  if (response.status === 204 || !type.startsWith('application/json')) return null;
  try {
    return await response.json();
  } catch {
    return null;
  }
}

/** The API's `{"error", "details"?}` as one readable sentence. */
function errorOf(response, body) {
  let message = typeof body?.error === 'string' ? body.error : `The server answered ${response.status}`;
  if (Array.isArray(body?.details) && body.details.length > 0) {
    message += ': ' + body.details.map((d) => `${d.field} ${d.message}`).join('; ');
  }
  if (response.status === 429) {
    const wait = response.headers.get('Retry-After');
    if (wait) message += ` (wait ${wait} s)`;
  }
  return new ApiError(response.status, message);
}

async function grant(params) {
  const response = await send('/auth/token', { method: 'POST', body: new URLSearchParams(params) });
  const body = await bodyOf(response);
  if (!response.ok) throw errorOf(response, body);
  access = { token: body.access_token, expiresAt: Date.now() + body.expires_in * 1000 };
  sessionStorage.setItem(REFRESH_KEY, body.refresh_token);
  // Renew a minute (or a fifth of the lifetime, if shorter) before expiry.
  const seconds = Math.max(1, body.expires_in - Math.min(60, body.expires_in / 5));
  clearTimeout(timer);
  timer = setTimeout(() => refresh().catch(() => {}), seconds * 1000);
  return body;
}

export function signIn(username, password) {
  return grant({ grant_type: 'password', username, password });
}

/** A new token pair from the refresh token; one at a time. */
export function refresh() {
  if (!refreshing) {
    const token = sessionStorage.getItem(REFRESH_KEY);
    if (token === null) return Promise.reject(end('Please sign in.'));
    refreshing = grant({ grant_type: 'refresh_token', refresh_token: token })
      .catch((error) => {
        if (error.status === 401 || error.status === 403) {
          throw end('Your session has ended. Please sign in again.');
        }
        throw error; // offline or overloaded: keep the session, try again later
      })
      .finally(() => {
        refreshing = null;
      });
  }
  return refreshing;
}

/** The access token, renewed first if it is about to expire. */
async function currentToken() {
  if (!access || Date.now() > access.expiresAt - 5000) await refresh();
  if (!access) throw new ApiError(401, 'Please sign in.', { ended: true });
  return access.token;
}

function authorized(method, url, token, body) {
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  return send(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

/**
 * An authenticated call: `{data, total}` (total from X-Total-Count), or an
 * ApiError carrying the API's message.
 */
export async function request(method, path, { body, query } = {}) {
  const url = query ? `${path}?${new URLSearchParams(query)}` : path;
  let used = await currentToken();
  let response = await authorized(method, url, used, body);
  if (response.status === 401) {
    if (access?.token === used) await refresh();
    response = await authorized(method, url, await currentToken(), body);
    if (response.status === 401) throw end('Your session has ended. Please sign in again.');
  }
  const data = await bodyOf(response);
  if (!response.ok) throw errorOf(response, data);
  const total = response.headers.get('X-Total-Count');
  return { data, total: total === null ? null : Number(total) };
}

export async function register(account) {
  const response = await send('/auth/register', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(account),
  });
  const body = await bodyOf(response);
  if (!response.ok) throw errorOf(response, body);
  return body;
}

/** Revokes this session's refresh token on the server, then forgets it. */
export async function signOut() {
  try {
    await currentToken();
    const token = sessionStorage.getItem(REFRESH_KEY);
    if (token !== null) await request('POST', '/auth/logout', { body: { refresh_token: token } });
  } finally {
    forget();
  }
}
