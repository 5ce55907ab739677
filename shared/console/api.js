// The public /v1 API, called with the user's API key. The key lives in sessionStorage (this tab
// only, gone when it closes); it is sent in the Authorization header only, never in a URL, and
// never logged.

const STORE = 'webhooks.console.key';

export const session = {
  get key() { return sessionStorage.getItem(STORE); },
  set(key) { sessionStorage.setItem(STORE, key); },
  clear() { sessionStorage.removeItem(STORE); catalogue = null; },
};

/** An API error: an RFC 9457 problem (`title`, `detail`, `field`) or a network failure. */
export class ApiError extends Error {
  constructor(status, problem = {}) {
    super(problem.detail || problem.title || `The service answered HTTP ${status}.`);
    this.status = status;
    this.title = problem.title || 'Error';
    this.field = problem.field || null;
  }
}

let unauthorized = () => {};
export const onUnauthorized = (fn) => { unauthorized = fn; };

/** `quiet`: a 401 is the caller's business (sign-in), not a reason to sign out. `version`: the
 * change applies only if the object still has this version (`If-Match`; else a 412). */
export async function api(method, path, body, { quiet = false, version } = {}) {
  const headers = { Accept: 'application/json', Authorization: `Bearer ${session.key}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (version !== undefined) headers['If-Match'] = `"${version}"`;
  let res;
  try {
    res = await fetch(`/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store', credentials: 'omit' });
  } catch {
    throw new ApiError(0, { title: 'Network error', detail: 'The service could not be reached. Check your connection and try again.' });
  }
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) {
    const err = new ApiError(res.status, data || {});
    if (res.status === 401 && !quiet) unauthorized(err);
    throw err;
  }
  return data;
}

/** `?a=1&b=2` from the non-empty values of an object. */
export function qs(params) {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v != null && v !== ''));
  return q.size ? `?${q}` : '';
}

let catalogue = null;
/** The event-type catalogue (fetched once per sign-in). */
export function eventTypes() {
  catalogue ||= api('GET', '/event-types').then((r) => r.data).catch((e) => { catalogue = null; throw e; });
  return catalogue;
}
