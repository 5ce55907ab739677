// Subscriptions: the list, the create/edit form, the secret (shown once), rotation, delete/restore.
import { api, qs, eventTypes } from './api.js';
import { h, enc, time, field, group, showError, clearErrors, busy, announce, copyButton, table, loadMore, flash, takeFlash, nextId } from './dom.js';
import { secretBox, publicKey, publicKeyBox, SCHEMES, PROFILES, DEFAULT_SIGNATURE, eventPicker, headerEditor, filterEditor, retryEditor, authEditor, signatureEditor, tlsEditor } from './editors.js';

export { signaturePairs } from './editors.js';

export function statusBadge(s) {
  if (!s.active) return h('span', { class: 'badge muted' }, 'Deleted');
  if (s.enabled) return h('span', { class: 'badge ok' }, 'Enabled');
  return h('span', {}, h('span', { class: 'badge bad' }, 'Disabled'), s.disabled_reason && h('span', { class: 'reason' }, ` ${s.disabled_reason}`));
}

const CIRCUIT = { closed: ['Closed', 'ok'], open: ['Open', 'bad'], half_open: ['Half-open', 'wait'] };
/** The endpoint's circuit breaker: open, its deliveries wait (using no attempt) for the next probe. */
export function circuitState(c) {
  if (!c) return '—';
  const [word, cls] = CIRCUIT[c.state] || [c.state, ''];
  return h('span', {}, h('span', { class: `badge ${cls}` }, word), c.since && [' since ', time(c.since)],
    c.state !== 'closed' && c.next_probe_at && ['; next probe ', time(c.next_probe_at)]);
}

export async function subscriptionList() {
  const page = await api('GET', `/subscriptions${qs({ limit: 50 })}`);
  const row = (s) => [
    h('div', {}, h('a', { href: `#/subscriptions/${enc(s.id)}/deliveries` }, s.name || s.url), s.name && h('div', { class: 'muted url' }, s.url)),
    statusBadge(s),
    String(s.failure_count),
    time(s.last_delivered_at, 'never'),
    h('a', { href: `#/subscriptions/${enc(s.id)}/edit`, 'aria-label': `Edit ${s.name || s.url}` }, 'Edit'),
  ];
  const t = table('Your subscriptions', ['Endpoint', 'Status', 'Failures', 'Last delivered', 'Actions'], page.data.map(row));
  const more = loadMore(page.next_cursor, async (cursor) => {
    const next = await api('GET', `/subscriptions${qs({ limit: 50, cursor })}`);
    t.add(next.data.map(row));
    return next.next_cursor;
  }, t.tbody);
  return h('section', {},
    h('div', { class: 'head' }, h('h1', {}, 'Subscriptions'), h('a', { class: 'button', href: '#/subscriptions/new' }, 'New subscription')),
    takeFlash(),
    page.data.length ? [t.el, more] : h('p', { class: 'empty' }, 'No subscriptions yet. Create one to start receiving webhooks.'));
}

export async function subscriptionForm({ params: [id] }) {
  const [types, sub] = await Promise.all([eventTypes(), id ? api('GET', `/subscriptions/${enc(id)}`) : null]);
  const s = sub || { url: '', name: '', description: '', events: ['*'], filter: null, payload: 'full', enabled: true, headers: {}, auth: { type: 'none' }, signature: DEFAULT_SIGNATURE, tls: null, rate_limit_per_second: null, ordering: 'unordered', active: true };
  const url = h('input', { name: 'url', type: 'url', value: s.url, required: true, placeholder: 'https://example.com/webhooks', autocomplete: 'off' });
  const name = h('input', { name: 'name', value: s.name || '', maxlength: '128' });
  const description = h('textarea', { name: 'description', rows: '2', maxlength: '1024', value: s.description || '' });
  const enabled = h('input', { type: 'checkbox', name: 'enabled', checked: s.enabled, id: nextId('en') });
  const thin = h('input', { type: 'checkbox', name: 'payload', checked: s.payload === 'thin', id: nextId('th') });
  const rate = h('input', { name: 'rate_limit_per_second', inputmode: 'numeric', autocomplete: 'off', placeholder: 'no limit', value: s.rate_limit_per_second ?? '' });
  const ordering = h('select', { name: 'ordering' }, [['unordered', 'Unordered (each as soon as it can go)'], ['fifo', 'FIFO (one at a time, in publish order)']].map(([v, label]) => h('option', { value: v, selected: (s.ordering || 'unordered') === v }, label)));
  const events = eventPicker(types, s.events);
  const filter = filterEditor(s.filter, sub);
  const retry = retryEditor(s.retry);
  const headers = headerEditor(s.headers, !!sub);
  const auth = authEditor(s.auth, !!sub);
  const tls = tlsEditor(s.tls ?? null, !!sub);
  const signature = signatureEditor(s.signature || DEFAULT_SIGNATURE, !!sub);
  const submit = h('button', { type: 'submit' }, sub ? 'Save changes' : 'Create subscription');
  const cancel = sub ? `#/subscriptions/${enc(sub.id)}/deliveries` : '#/subscriptions';
  const form = h('form', { novalidate: true, class: 'card' },
    field('Endpoint URL', url, { hint: 'Where deliveries are POSTed: an https:// URL your receiver listens on.' }),
    field('Name (optional)', name), field('Description (optional)', description),
    events.el, filter.el,
    h('div', { class: 'field', 'data-field': 'payload' }, h('label', { class: 'check', for: thin.id }, thin, ' Thin payloads (send the event without its data; the receiver fetches it by delivery id)'), h('p', { class: 'field-error', hidden: true })),
    retry.el,
    group('Rate limit and ordering', 'pace', h('div', { class: 'sub-fields' },
      field('Rate limit (requests per second)', rate, { hint: 'Optional, 1-10000: deliveries over it wait their turn without using an attempt. Empty: no limit.' }),
      field('Delivery order', ordering, { hint: 'FIFO: a failing delivery holds the ones behind it; only events published to the ordered event queue have a publish order. A change applies to later events.' }))),
    headers.el, auth.el, tls.el, signature.el,
    h('div', { class: 'field', 'data-field': 'enabled' }, h('label', { class: 'check', for: enabled.id }, enabled, ' Enabled (deliver events to this endpoint)'), h('p', { class: 'field-error', hidden: true })),
    h('div', { class: 'actions' }, submit, h('a', { href: cancel, class: 'button secondary' }, 'Cancel')));
  const section = h('section', {}, h('h1', {}, sub ? `Edit ${sub.name || 'subscription'}` : 'New subscription'), form);

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    let body;
    try {
      const ev = events.value();
      if (!ev.length) throw { field: 'events', message: 'Pick at least one event type (or All events).' };
      const r = rate.value.trim() ? Number(rate.value.trim()) : null;
      if (r !== null && !(Number.isInteger(r) && r >= 1 && r <= 10000)) throw { field: 'rate_limit_per_second', message: 'a whole number from 1 to 10000 (empty: no limit)' };
      body = { url: url.value.trim(), name: name.value.trim() || null, description: description.value.trim() || null, events: ev, filter: filter.value(), payload: thin.checked ? 'thin' : 'full', retry: retry.value(), enabled: enabled.checked, headers: headers.value(), auth: auth.value(), tls: tls.value(), signature: signature.value(), rate_limit_per_second: r, ordering: (sub || ordering.value === 'fifo') ? ordering.value : null };
      if (!sub) body.secret = signature.secret();
      if (!sub) for (const k of Object.keys(body)) if (body[k] == null) delete body[k];
      // Editing: only what changed is sent, so a change made elsewhere meanwhile (say, the
      // service disabling the endpoint) is not overwritten by this form's stale copy of it.
      if (sub) body = changes(s, body);
    } catch (err) {
      return showError(form, err);
    }
    try {
      if (sub && !Object.keys(body).length) {
        flash('Nothing changed.');
        location.hash = `#/subscriptions/${enc(sub.id)}/deliveries`;
        return;
      }
      const out = await busy(submit, sub ? 'Saving…' : 'Creating…', () => (sub ? api('PATCH', `/subscriptions/${enc(sub.id)}`, body, { version: sub.version }) : api('POST', '/subscriptions', body)));
      if (sub) {
        flash('Changes saved.');
        location.hash = `#/subscriptions/${enc(sub.id)}/deliveries`;
        return;
      }
      const h1 = h('h1', { tabindex: '-1' }, 'Subscription created');
      // v1a: no secret in the response; the receiver needs the public key instead.
      const shown = out.secret ? secretBox('Signing secret', out.secret) : publicKeyBox('Public key', out.signature?.public_key);
      section.replaceChildren(h1, shown,
        h('p', { class: 'actions' }, h('a', { class: 'button', href: `#/subscriptions/${enc(out.id)}/deliveries` }, 'Go to its deliveries'), h('a', { class: 'button secondary', href: '#/subscriptions' }, 'Back to subscriptions')));
      document.title = 'Subscription created · Webhooks console';
      h1.focus();
      announce(out.secret ? 'Subscription created. Its signing secret is shown once.' : 'Subscription created. Its public key is shown.');
    } catch (err) {
      if (err.status === 412) return stale(form);
      showError(form, err);
    }
  });
  if (sub) section.append(manage(sub));
  return section;
}

/** The fields of `body` that differ from the subscription `s` as loaded. */
function changes(s, body) {
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  const sorted = (v) => [...v].sort();
  const was = { url: s.url, name: s.name || null, description: s.description || null, events: sorted(s.events), filter: s.filter ?? null, payload: s.payload || 'full', retry: s.retry ?? null, enabled: s.enabled, rate_limit_per_second: s.rate_limit_per_second ?? null, ordering: s.ordering || 'unordered' };
  const out = {};
  for (const [k, v] of Object.entries(body)) {
    if (v === undefined) continue; // headers, auth, tls and signature: untouched
    if (k === 'events' ? !same(sorted(v), was.events) : !(k in was) || !same(v, was[k])) out[k] = v;
  }
  return out;
}

/** Someone changed the subscription since the form was loaded (412): say so, offer a reload. */
function stale(form) {
  const reload = h('button', { type: 'button', onclick: () => window.dispatchEvent(new HashChangeEvent('hashchange')) }, 'Reload it');
  const note = h('div', { class: 'notice bad', role: 'alert' },
    h('p', {}, 'Someone else changed this subscription since you opened it, so your changes were not saved. Reload it to see theirs, then make yours again.'), reload);
  form.prepend(note);
  reload.focus();
}

/** Rotate the secret; delete or restore. */
function manage(sub) {
  const box = h('div', {});
  const rotate = h('button', { type: 'button', class: 'secondary', onclick: async () => {
    const what = sub.signature?.scheme === 'v1a' ? 'key' : 'secret';
    if (!confirm(`Rotate the signing ${what}? The current one keeps signing alongside the new one for 24 hours.`)) return;
    try {
      const out = await busy(rotate, 'Rotating…', () => api('POST', `/subscriptions/${enc(sub.id)}/rotate-secret`, undefined, { version: sub.version }));
      sub.version += 1; // this change; a later action is guarded by it
      const until = h('p', {}, `The previous ${what} also signs deliveries until `, time(out.previous_secret_expires_at), '.');
      // v1a answers with the new key pair's public half, never a secret.
      const shown = out.secret ? secretBox('New signing secret', out.secret, until) : publicKeyBox('New public key', out.public_key, until);
      box.replaceChildren(shown);
      shown.querySelector('h2').tabIndex = -1;
      shown.querySelector('h2').focus();
    } catch (err) { showError(danger, err); }
  } }, 'Rotate secret');
  const remove = h('button', { type: 'button', class: sub.active ? 'danger' : 'secondary', onclick: async () => {
    if (sub.active && !confirm('Delete this subscription? It stops receiving events; you can restore it later.')) return;
    try {
      await busy(remove, sub.active ? 'Deleting…' : 'Restoring…', () => (sub.active ? api('DELETE', `/subscriptions/${enc(sub.id)}`, undefined, { version: sub.version }) : api('POST', `/subscriptions/${enc(sub.id)}/restore`, undefined, { version: sub.version })));
      flash(sub.active ? 'Subscription deleted. You can restore it from its Edit page.' : 'Subscription restored.');
      location.hash = '#/subscriptions';
    } catch (err) { showError(danger, err); }
  } }, sub.active ? 'Delete subscription' : 'Restore subscription');
  const danger = h('div', { class: 'card' }, h('h2', {}, 'Secret and lifecycle'), h('div', { class: 'actions' }, rotate, remove), box);
  return danger;
}
