// The subscription form's parts: the secret and public-key boxes, and one editor per field group
// (events, headers, filter, retry, endpoint auth, signature, mTLS), each returning its element and
// a value() that gives the request's field (undefined on edit when untouched).
import { api, qs, eventTypes } from './api.js';
import { h, enc, time, field, group, showError, clearErrors, busy, announce, copyButton, table, loadMore, flash, takeFlash, nextId } from './dom.js';

/** The signing secret, shown once, with a copy button. */
export function secretBox(title, secret, ...extra) {
  return h('div', { class: 'card secret-box' }, h('h2', {}, title),
    h('p', {}, 'Shown only this once: copy it now and keep it where your receiver can read it. It signs every delivery (the webhook-signature header).'),
    h('div', { class: 'secret-row' }, h('code', { class: 'secret', 'aria-label': 'Signing secret' }, secret), copyButton(() => secret, 'Copy secret')), ...extra);
}

/** A v1a public key (`whpk_…`) with a copy button. Not a secret: shown wherever it helps. */
export function publicKey(key, label = 'Copy public key') {
  return h('div', { class: 'secret-row' }, h('code', { class: 'public-key', 'aria-label': 'Public key' }, key), copyButton(() => key, label));
}

/** Where a v1a subscription's secret would be: it has none, the receiver verifies with this key. */
export function publicKeyBox(title, key, ...extra) {
  return h('div', { class: 'card key-box' }, h('h2', {}, title),
    h('p', {}, 'Deliveries are signed with ed25519 (v1a): give this public key to your receiver to verify the webhook-signature header. It is not a secret; the subscription\'s page shows it again.'),
    publicKey(key), ...extra);
}

export const SCHEMES = { v1: 'v1 · HMAC-SHA256 (shared secret)', v1a: 'v1a · ed25519 (public key)' };
export const PROFILES = [
  ['standard', 'Standard Webhooks (webhook-signature)'],
  ['sha256_hex', 'sha256=<hex> in a header (TRST)'],
  ['hex', 'bare hex in a header (TrustPager)'],
];
export const DEFAULT_SIGNATURE = { scheme: 'v1', profile: 'standard', header: null, event_header: null, public_key: null, previous_public_key: null };

/** A subscription's signature settings as summary pairs (its deliveries page). */
export function signaturePairs(sig) {
  if (!sig) return {};
  return {
    Signature: `${SCHEMES[sig.scheme] || sig.scheme}; ${PROFILES.find(([v]) => v === sig.profile)?.[1] || sig.profile}`,
    ...(sig.header ? { 'Signature header': h('code', {}, sig.header) } : {}),
    'Event header': h('code', {}, sig.event_header || 'x-webhook-event'),
    ...(sig.public_key ? { 'Public key': publicKey(sig.public_key) } : {}),
    // During a key rotation receivers should accept both.
    ...(sig.previous_public_key ? { 'Previous public key': publicKey(sig.previous_public_key, 'Copy previous public key') } : {}),
  };
}

/** Checkboxes for `*`, each `group.*` and each catalogue type; patterns not in the catalogue are kept. */
export function eventPicker(types, selected) {
  const groups = new Map([['*', ['*']]]);
  for (const { name } of types) {
    const g = name.split('.')[0];
    if (!groups.has(g)) groups.set(g, [`${g}.*`]);
    groups.get(g).push(name);
  }
  const known = [...groups.values()].flat();
  const extra = selected.filter((e) => !known.includes(e));
  if (extra.length) groups.set('other', extra);
  const boxes = [];
  const box = (value, i) => {
    const cb = h('input', { type: 'checkbox', name: 'events', value, checked: selected.includes(value), id: nextId('ev') });
    boxes.push(cb);
    const label = value === '*' ? 'All events (*)' : value.endsWith('.*') && i === 0 ? `All ${value}` : value;
    return h('label', { class: `check${i && !value.endsWith('*') ? ' indent' : ''}`, for: cb.id }, cb, ' ', h('code', {}, label));
  };
  const el = group('Events', 'events',
    h('p', { class: 'hint' }, 'Which event types this endpoint receives. See the Event types page for their payloads.'),
    h('div', { class: 'event-groups' }, [...groups.values()].map((names) => h('div', { class: 'event-group' }, names.map(box)))));
  return { el, value: () => boxes.filter((b) => b.checked).map((b) => b.value) };
}

/** Custom headers. Values are write-only: when editing, any change re-sends (and replaces) them all. */
export function headerEditor(existing, editing) {
  let dirty = false;
  const rows = h('div', { class: 'header-rows' });
  const add = (name = '') => {
    const n = h('input', { value: name, 'aria-label': 'Custom header name', placeholder: 'X-Team', autocomplete: 'off' });
    const v = h('input', { 'aria-label': 'Custom header value', placeholder: name ? 'unchanged (hidden)' : 'value', autocomplete: 'off' });
    const row = h('div', { class: 'header-row' }, n, v, h('button', { type: 'button', class: 'secondary', 'aria-label': 'Remove this header', onclick: () => {
      row.remove(); dirty = true; addButton.focus();
    } }, 'Remove'));
    rows.append(row);
    return n;
  };
  Object.keys(existing).forEach((name) => add(name));
  rows.addEventListener('input', () => { dirty = true; });
  const addButton = h('button', { type: 'button', class: 'secondary', onclick: () => { dirty = true; add().focus(); } }, 'Add header');
  const el = group('Custom headers', 'headers',
    h('p', { class: 'hint' }, editing && Object.keys(existing).length ? 'Values are never shown. To change headers, enter every value again.' : 'Sent with every delivery (at most 20).'),
    rows, addButton);
  const value = () => {
    if (editing && !dirty) return undefined;
    const out = {};
    for (const row of rows.children) {
      const [n, v] = row.querySelectorAll('input');
      if (!n.value.trim() && !v.value) continue;
      if (editing && !v.value) throw { field: `headers.${n.value.trim()}`, message: 'enter its value again (header values are never shown, and saving replaces all headers)' };
      out[n.value.trim()] = v.value;
    }
    return out;
  };
  return { el, value };
}

/** The payload filter as JSON (docs/filters.md); on a saved subscription, tried on a sample event
 * through the filter test route (which sends and stores nothing). */
export function filterEditor(current, sub) {
  const text = h('textarea', { id: nextId('flt'), name: 'filter', rows: '4', spellcheck: 'false', class: 'code', placeholder: '{"data.project.region": {"$in": ["eu", "uk"]}}', value: current ? JSON.stringify(current, null, 2) : '' });
  const value = () => {
    const t = text.value.trim();
    if (!t) return null;
    try { return JSON.parse(t); } catch (e) { throw { field: 'filter', message: `not valid JSON (${e.message})` }; }
  };
  const parts = [h('p', { class: 'hint' }, 'Optional: deliver only events whose content matches, as JSON. Paths are event_type and data.<key>…; operators $eq, $ne, $in, $nin, $gt, $gte, $lt, $lte, $exists, $and, $or, $not. Empty: every event of the chosen types.'),
    h('div', { class: 'field' }, h('label', { for: text.id }, 'Filter (JSON)'), text)];
  if (sub) {
    const type = h('input', { name: 'filter_event_type', value: sub.events.find((e) => !e.includes('*')) || 'project.created', autocomplete: 'off' });
    const data = h('textarea', { name: 'filter_data', rows: '3', spellcheck: 'false', class: 'code', value: '{}' });
    const out = h('p', { class: 'filter-verdict', role: 'status' });
    const show = (ok, words) => { out.textContent = words; out.className = `filter-verdict ${ok ? 'ok' : 'bad'}`; };
    const run = h('button', { type: 'button', class: 'secondary', onclick: async () => {
      let filter, sample;
      try { filter = value(); } catch (e) { return show(false, `Filter: ${e.message}`); }
      try { sample = JSON.parse(data.value.trim() || 'null'); } catch (e) { return show(false, `Sample data is not valid JSON (${e.message})`); }
      try {
        const r = await busy(run, 'Testing…', () => api('POST', `/subscriptions/${enc(sub.id)}/filter/test`, { event_type: type.value.trim(), data: sample, filter }));
        show(r.delivered, `${r.delivered ? 'Delivered' : 'Not delivered'} (decided by ${r.decided_by}): ${r.reason}`);
      } catch (err) { show(false, err.field ? `${err.field}: ${err.message}` : err.message); }
    } }, 'Test filter');
    parts.push(h('div', { class: 'filter-test' }, h('p', { class: 'hint' }, 'Try the filter above (saved or not) on a sample event:'),
      field('Sample event type', type), field('Sample data (JSON)', data), run, out));
  }
  const el = group('Payload filter', 'filter', ...parts);
  // An error shown for an earlier text goes once the text changes.
  text.addEventListener('input', () => {
    const err = el.querySelector(':scope > .field-error');
    err.hidden = true;
    err.textContent = '';
    el.removeAttribute('aria-invalid');
  });
  return { el, value };
}

/** Its own retry policy (waits after each failed attempt, and a timeout), within the stack's;
 * both empty: the stack's. "none" makes a single attempt. */
export function retryEditor(current) {
  const waits = h('input', { name: 'retry_schedule', autocomplete: 'off', placeholder: "the stack's (e.g. 60, 600, 3600)", value: current?.schedule ? (current.schedule.length ? current.schedule.join(', ') : 'none') : '' });
  const timeout = h('input', { name: 'retry_timeout', inputmode: 'numeric', autocomplete: 'off', placeholder: "the stack's", value: current?.timeout_ms ?? '' });
  const value = () => {
    const out = {};
    const w = waits.value.trim();
    if (w === 'none') out.schedule = [];
    else if (w) {
      out.schedule = w.split(/[\s,]+/).filter(Boolean).map(Number);
      if (out.schedule.some((n) => !Number.isInteger(n))) throw { field: 'retry.schedule', message: 'whole numbers of seconds, separated by commas (or "none" for a single attempt)' };
    }
    const t = timeout.value.trim();
    if (t) {
      out.timeout_ms = Number(t);
      if (!Number.isInteger(out.timeout_ms)) throw { field: 'retry.timeout_ms', message: 'a whole number of milliseconds' };
    }
    return Object.keys(out).length ? out : null;
  };
  const el = group('Retry policy', 'retry',
    h('p', { class: 'hint' }, "Optional, within the service's own bounds: the waits before each retry of a failed delivery, and how long to wait for your endpoint. Empty: the service's defaults."),
    h('div', { class: 'sub-fields' }, field('Retry waits (seconds)', waits, { field: 'retry.schedule' }), field('Timeout (ms)', timeout, { field: 'retry.timeout_ms' })));
  return { el, value };
}

/** Endpoint auth: none, HTTP Basic, an API-key header or an OAuth 2.0 client-credentials token
 * (fetched by the service, sent as a Bearer token). Credentials are write-only. */
export function authEditor(current, editing) {
  let dirty = false;
  const kinds = [['none', 'None'], ['basic', 'HTTP Basic'], ['api_key', 'API key header'], ['oauth2', 'OAuth 2.0 client credentials']];
  const name = nextId('auth');
  const radios = kinds.map(([value]) => h('input', { type: 'radio', name, value, checked: current.type === value, id: nextId('r') }));
  const hidden = editing ? 'unchanged (hidden)' : '';
  const clientAuth = [['basic', 'HTTP Basic header (client_secret_basic)'], ['body', 'In the form body (client_secret_post)']];
  const inputs = {
    username: h('input', { value: current.username || '', autocomplete: 'off' }),
    password: h('input', { type: 'password', autocomplete: 'new-password', placeholder: current.type === 'basic' ? hidden : '' }),
    header: h('input', { value: current.header || '', placeholder: 'X-Api-Key', autocomplete: 'off' }),
    value: h('input', { type: 'password', autocomplete: 'new-password', placeholder: current.type === 'api_key' ? hidden : '' }),
    token_url: h('input', { type: 'url', value: current.token_url || '', placeholder: 'https://auth.example.com/oauth/token', autocomplete: 'off' }),
    client_id: h('input', { value: current.client_id || '', autocomplete: 'off', spellcheck: 'false' }),
    client_secret: h('input', { type: 'password', autocomplete: 'new-password', placeholder: current.type === 'oauth2' ? hidden : '' }),
    scope: h('input', { value: current.scope || '', placeholder: 'webhooks.write', autocomplete: 'off' }),
    audience: h('input', { value: current.audience || '', autocomplete: 'off' }),
    client_auth: h('select', {}, clientAuth.map(([v, label]) => h('option', { value: v, selected: (current.client_auth || 'basic') === v }, label))),
  };
  // Each input's `field` is the name the API's problems use (auth.token_url …), so an error shows next to it.
  const panels = {
    none: null,
    basic: h('div', { class: 'sub-fields' }, field('Username', inputs.username, { field: 'auth.username' }), field('Password', inputs.password, { field: 'auth.password' })),
    api_key: h('div', { class: 'sub-fields' }, field('Header name', inputs.header, { field: 'auth.header' }), field('Key value', inputs.value, { field: 'auth.value' })),
    oauth2: h('div', { class: 'sub-fields' },
      field('Token URL', inputs.token_url, { field: 'auth.token_url' }), field('Client ID', inputs.client_id, { field: 'auth.client_id' }),
      field('Client secret', inputs.client_secret, { field: 'auth.client_secret' }),
      field('Client authentication', inputs.client_auth, { field: 'auth.client_auth' }),
      field('Scope (optional)', inputs.scope, { field: 'auth.scope', hint: 'Space-separated.' }), field('Audience (optional)', inputs.audience, { field: 'auth.audience' })),
  };
  const type = () => radios.find((r) => r.checked)?.value || 'none';
  const sync = () => Object.entries(panels).forEach(([k, p]) => p && (p.hidden = k !== type()));
  const el = group('Endpoint authentication', 'auth',
    h('div', { class: 'radios' }, kinds.map(([, label], i) => h('label', { class: 'check', for: radios[i].id }, radios[i], ` ${label}`))),
    panels.basic, panels.api_key, panels.oauth2);
  el.addEventListener('input', () => { dirty = true; sync(); });
  el.addEventListener('change', sync);
  sync();
  const value = () => {
    if (editing && !dirty) return undefined;
    const t = type();
    const secret = { basic: 'password', api_key: 'value', oauth2: 'client_secret' }[t];
    if (editing && secret && !inputs[secret].value) throw { field: `auth.${secret}`, message: 'enter it again (credentials are never shown)' };
    if (t === 'basic') return { type: t, username: inputs.username.value, password: inputs.password.value };
    if (t === 'api_key') return { type: t, header: inputs.header.value.trim(), value: inputs.value.value };
    if (t === 'oauth2') {
      const v = (k) => inputs[k].value.trim();
      return { type: t, token_url: v('token_url'), client_id: v('client_id'), client_secret: inputs.client_secret.value, scope: v('scope') || null, audience: v('audience') || null, client_auth: inputs.client_auth.value };
    }
    return { type: 'none' };
  };
  return { el, value };
}

/** How deliveries are signed. The scheme is chosen at create only (PATCH refuses it); the profile
 * adds the body-hex header some receivers verify instead, under the name they expect. A v1a
 * subscription has no HMAC secret, so neither a secret of one's own nor a body-hex profile. */
export function signatureEditor(current, editing) {
  let dirty = false;
  const name = nextId('scheme');
  const radios = editing ? [] : Object.keys(SCHEMES).map((value) => h('input', { type: 'radio', name, value, checked: current.scheme === value, id: nextId('r') }));
  const profile = h('select', {}, PROFILES.map(([v, label]) => h('option', { value: v, selected: v === current.profile }, label)));
  const header = h('input', { value: current.header || '', placeholder: 'x-webhook-signature', autocomplete: 'off', spellcheck: 'false' });
  const eventHeader = h('input', { value: current.event_header || '', placeholder: 'x-webhook-event', autocomplete: 'off', spellcheck: 'false' });
  const secret = h('input', { type: 'password', autocomplete: 'new-password', spellcheck: 'false' });
  const headerField = field('Signature header name', header, { field: 'signature.header', hint: 'Empty: x-webhook-signature.' });
  const secretField = !editing && field('Signing secret (optional)', secret, { field: 'secret', hint: 'Your own secret: whsec_… or a raw secret of 16–256 characters; empty: generated.' });
  const scheme = () => (editing ? current.scheme : radios.find((r) => r.checked)?.value || 'v1');
  const sync = () => {
    const asymmetric = scheme() === 'v1a';
    if (asymmetric) profile.value = 'standard';
    profile.disabled = asymmetric;
    headerField.hidden = profile.value === 'standard';
    if (secretField) secretField.hidden = secret.disabled = asymmetric;
  };
  const schemeEl = editing
    ? h('p', {}, 'Scheme: ', h('strong', {}, SCHEMES[current.scheme] || current.scheme), h('span', { class: 'muted' }, ' (set when the subscription was created)'))
    : h('div', { class: 'radios' }, radios.map((r) => h('label', { class: 'check', for: r.id }, r, ` ${SCHEMES[r.value]}`)));
  const el = group('Signature', 'signature',
    h('p', { class: 'hint' }, 'Every delivery carries the Standard Webhooks headers (webhook-id, webhook-timestamp, webhook-signature). With v1 the hex HMAC of the body is sent too: as x-webhook-signature: sha256=… (standard), or in the header and format your receiver expects.'),
    schemeEl,
    editing && current.public_key && h('div', { class: 'field' }, h('p', {}, 'Public key (your receiver verifies with it):'), publicKey(current.public_key)),
    h('div', { class: 'sub-fields' }, field('Signature profile', profile, { field: 'signature.profile' }), headerField,
      field('Event header name', eventHeader, { field: 'signature.event_header', hint: 'The header carrying the event type. Empty: x-webhook-event.' }), secretField));
  el.addEventListener('input', () => { dirty = true; sync(); });
  el.addEventListener('change', sync);
  sync();
  const value = () => {
    if (editing && !dirty) return undefined;
    const p = profile.value;
    const out = { profile: p, header: p === 'standard' ? null : header.value.trim() || null, event_header: eventHeader.value.trim() || null };
    return editing ? out : { scheme: scheme(), ...out };
  };
  // The create body's top-level `secret` (v1 only; a PATCH has none).
  const ownSecret = () => (!editing && scheme() === 'v1' && secret.value) || null;
  return { el, value, secret: ownSecret };
}

/** mTLS: the client certificate and key deliveries present, and optionally the only CAs the
 * endpoint's own certificate may chain to (pinning). The key is never shown, so when editing,
 * empty boxes keep what is set; cert and key are sent together. */
export function tlsEditor(current, editing) {
  const pem = (placeholder) => h('textarea', { rows: '4', spellcheck: 'false', autocomplete: 'off', class: 'code', placeholder });
  const cert = pem('-----BEGIN CERTIFICATE-----');
  const key = pem('-----BEGIN PRIVATE KEY-----');
  const cas = pem('-----BEGIN CERTIFICATE-----');
  const remove = editing && current ? h('input', { type: 'checkbox', id: nextId('tls') }) : null; // only what is set can be removed
  const state = current
    ? h('p', {}, current.client_certificate_sha256 ? ['Set: certificate SHA-256 ', h('code', { class: 'url' }, current.client_certificate_sha256)] : 'Set: no client certificate', current.ca_certificates ? `; trusts only ${current.ca_certificates} CA certificate${current.ca_certificates === 1 ? '' : 's'}.` : '; trusts the public web roots.')
    : h('p', { class: 'muted' }, 'None: deliveries present no client certificate.');
  const err = h('p', { class: 'field-error', id: nextId('err'), hidden: true });
  // A <details> that is its own error slot (data-field="tls"), like a fieldset made by group().
  const el = h('details', { class: 'fold', 'data-field': 'tls', 'aria-describedby': err.id, open: !!current },
    h('summary', {}, 'Client certificate (mTLS)'),
    h('p', { class: 'hint' }, editing && current ? 'The key is never shown. To replace the certificate, paste it and its key again; empty: unchanged.' : 'Optional, for endpoints that require a client certificate. PEM text.'),
    editing && state,
    field('Client certificate (PEM)', cert, { field: 'tls.client_certificate' }),
    field('Private key (PEM)', key, { field: 'tls.client_key', hint: 'Unencrypted PKCS#8, PKCS#1 or SEC1.' }),
    field('CA certificates to trust (PEM, optional)', cas, { field: 'tls.ca_certificates', hint: 'Only these may sign the endpoint\'s server certificate; empty: the public web roots.' }),
    remove && h('div', { class: 'field' }, h('label', { class: 'check', for: remove.id }, remove, ' Remove it (stop using mTLS)')),
    err);
  remove?.addEventListener('change', () => [cert, key, cas].forEach((t) => { t.disabled = remove.checked; }));
  const value = () => {
    if (remove?.checked) return null;
    const [c, k, a] = [cert, key, cas].map((t) => t.value.trim());
    if (!c && !k && !a) return editing ? undefined : null;
    // What is sent replaces what is set: new CAs alone would drop the client certificate.
    if (!c && (k || current?.client_certificate_sha256)) throw { field: 'tls.client_certificate', message: 'paste the certificate too (it is sent with its key)' };
    if (c && !k) throw { field: 'tls.client_key', message: editing ? 'paste the private key again (it is never shown)' : 'paste the private key of this certificate' };
    return { client_certificate: c || null, client_key: k || null, ca_certificates: a || null };
  };
  return { el, value };
}
