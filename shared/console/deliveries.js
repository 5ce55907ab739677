// A subscription's deliveries (filters, pagination, test event, recover) and one delivery's
// request and responses (tabs), with Resend for failed deliveries.
import { api, qs, eventTypes } from './api.js';
import { h, enc, time, json, field, showError, clearErrors, busy, announce, tabs, table, pairs, loadMore, takeFlash, notice } from './dom.js';
import { statusBadge, circuitState, signaturePairs } from './subscriptions.js';
import { healthCard } from './charts.js';

const RESULTS = {
  delivered: ['✓', 'Delivered', 'ok'],
  failed: ['✗', 'Failed', 'bad'],
  retrying: ['↻', 'Retrying', 'wait'],
  queued: ['…', 'Queued', 'wait'],
  cancelled: ['⊘', 'Cancelled', 'bad'],
  dead_lettered: ['⚠', 'Dead-lettered', 'bad'],
};
/** What Resend and recover reopen. */
const REOPENABLE = ['failed', 'cancelled', 'dead_lettered'];
function result(status) {
  const [icon, word, cls] = RESULTS[status] || ['?', status, ''];
  return h('span', { class: `badge ${cls}` }, h('span', { 'aria-hidden': 'true' }, icon), ` ${word}`);
}
const outcome = (code, errorClass) => (code ? `HTTP ${code}` : errorClass ? `no answer (${errorClass})` : '—');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const select = (name, options, value) => h('select', { name }, options.map(([v, label]) => h('option', { value: v, selected: v === value }, label)));
const crumbs = (...links) => h('nav', { 'aria-label': 'Breadcrumb', class: 'crumbs' }, h('a', { href: '#/subscriptions' }, 'Subscriptions'), links.map((l) => [' › ', l]));

export async function deliveryList({ params: [id], query }) {
  const [sub, types] = await Promise.all([api('GET', `/subscriptions/${enc(id)}`), eventTypes()]);
  const base = `/subscriptions/${enc(id)}/deliveries`;
  const filters = { status: query.get('status') || '', event_type: query.get('event_type') || '', limit: query.get('limit') || '20' };
  const status = notice();
  const results = h('div', { class: 'results' });

  const row = (d) => [h('a', { href: `#/deliveries/${enc(d.id)}` }, d.event_id), h('code', {}, d.event_type), time(d.occurred_at), result(d.status), String(d.attempts), outcome(d.last_status_code, d.last_error_class)];
  const load = async () => {
    results.setAttribute('aria-busy', 'true');
    try {
      const page = await api('GET', base + qs(filters));
      if (!page.data.length) {
        results.replaceChildren(h('p', { class: 'empty' }, filters.status || filters.event_type ? 'No deliveries match these filters.' : 'No deliveries yet. Send a test event, or publish an event this subscription matches.'));
        return 0;
      }
      const t = table('Deliveries, newest event first', ['Event', 'Type', 'Occurred', 'Result', 'Attempts', 'Last response'], page.data.map(row));
      results.replaceChildren(t.el, loadMore(page.next_cursor, async (cursor) => {
        const next = await api('GET', base + qs({ ...filters, cursor }));
        t.add(next.data.map(row));
        return next.next_cursor;
      }, t.tbody));
      return page.data.length;
    } finally {
      results.removeAttribute('aria-busy');
    }
  };

  // Filters: applied in place; the hash keeps them (shareable, survives a reload).
  const limits = [...new Set(['10', '20', '50', '100', filters.limit])].map((v) => [v, v]);
  const filterForm = h('form', { role: 'search', class: 'filters', 'aria-label': 'Filter deliveries', novalidate: true },
    field('Result', select('status', [['', 'Any'], ...Object.entries(RESULTS).map(([v, [icon, word]]) => [v, `${icon} ${word}`])], filters.status)),
    field('Event type', select('event_type', [['', 'Any'], ...types.map((t) => [t.name, t.name])], filters.event_type)),
    field('Per page', select('limit', limits, filters.limit)),
    h('button', { type: 'submit', class: 'secondary' }, 'Apply filters'));
  filterForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(filterForm);
    for (const k of Object.keys(filters)) filters[k] = filterForm.elements[k].value;
    history.replaceState(null, '', `#/subscriptions/${enc(id)}/deliveries${qs({ ...filters, limit: filters.limit === '20' ? '' : filters.limit })}`);
    try {
      const n = await busy(e.submitter || filterForm.querySelector('button'), 'Loading…', load);
      announce(`${n} deliveries shown`);
    } catch (err) { showError(filterForm, err); }
  });

  const testButton = h('button', { type: 'button', onclick: () => busy(testButton, 'Sending…', async () => {
    try {
      const r = await api('POST', `/subscriptions/${enc(id)}/test`);
      const a = r.attempt;
      const link = h('a', { href: `#/deliveries/${enc(r.delivery_id)}` }, 'See the delivery');
      if (r.status === 'delivered') status.say(`✓ Test event delivered: ${outcome(a.status_code)} in ${a.duration_ms} ms. `, 'ok', link);
      else status.say(`✗ Test event failed: ${outcome(a.status_code, a.error_class)}${a.error_message ? ` (${a.error_message})` : ''}. `, 'bad', link);
      await load();
    } catch (err) { status.say(err.message, 'bad'); }
  }) }, 'Send test event');

  const recover = recoverForm(id, status, load);
  await load().catch((err) => results.replaceChildren(h('p', { class: 'form-error', role: 'alert' }, err.message)));
  return h('section', {},
    crumbs(h('span', { 'aria-current': 'page' }, sub.name || sub.url)),
    h('div', { class: 'head' }, h('h1', {}, `Deliveries of ${sub.name || 'subscription'}`), h('a', { class: 'button secondary', href: `#/subscriptions/${enc(id)}/edit` }, 'Edit subscription')),
    takeFlash(),
    h('div', { class: 'card summary' }, pairs({ URL: h('code', { class: 'url' }, sub.url), Status: statusBadge(sub), Events: sub.events.join(', '), 'Failures in a row': sub.failure_count, 'Last delivered': time(sub.last_delivered_at, 'never'), 'Circuit breaker': circuitState(sub.circuit), 'Rate limit': sub.rate_limit_per_second ? `${sub.rate_limit_per_second} requests per second` : 'no limit', Ordering: sub.ordering === 'fifo' ? 'FIFO (one at a time, in publish order)' : 'unordered', ...signaturePairs(sub.signature) })),
    healthCard(id),
    h('div', { class: 'actions' }, testButton, recover),
    status, filterForm, results);
}

/** "Recover failures since…": redeliver every failed, cancelled or dead-lettered delivery of the
 * events since a local date-time (the API answers a page of work at a time; go on until done). */
function recoverForm(id, status, reload) {
  const pad = (n) => String(n).padStart(2, '0');
  const d = new Date(Date.now() - 24 * 3600e3);
  const since = h('input', { type: 'datetime-local', name: 'since', value: `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}` });
  const submit = h('button', { type: 'submit' }, 'Recover');
  const form = h('form', { novalidate: true, class: 'recover' }, field('Since (your local time)', since, { hint: 'Every failed delivery of the events since then is sent again.' }), submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const when = new Date(since.value);
    if (!since.value || Number.isNaN(when.getTime())) return showError(form, { field: 'since', message: 'Enter a date and time.' });
    try {
      const n = await busy(submit, 'Recovering…', async () => {
        let total = 0;
        let cursor = null;
        do {
          const r = await api('POST', `/subscriptions/${enc(id)}/recover`, { since: when.toISOString(), cursor });
          total += r.recovered;
          cursor = r.next_cursor;
        } while (cursor);
        return total;
      });
      status.say(`Queued ${n} failed ${n === 1 ? 'delivery' : 'deliveries'} again.`);
      await reload();
    } catch (err) { showError(form, err); }
  });
  return h('details', { class: 'recover-box' }, h('summary', {}, 'Recover failures since…'), form);
}

const fetchDelivery = (id) => Promise.all([api('GET', `/deliveries/${enc(id)}`), api('GET', `/deliveries/${enc(id)}/attempts`).then((r) => r.data)]);

export async function deliveryDetail({ params: [id] }) {
  const section = h('section', {});
  const [d, attempts] = await fetchDelivery(id);
  render(section, d, attempts, 0);
  return section;
}

function render(section, d, attempts, tab, focusNewest = false) {
  const status = notice();
  const actions = h('div', { class: 'actions' });
  if (REOPENABLE.includes(d.status)) {
    const resend = h('button', { type: 'button', onclick: () => busy(resend, 'Resending…', async () => {
      try {
        await api('POST', `/deliveries/${enc(d.id)}/redeliver`);
        status.say('Resend queued: waiting for the new attempt…', 'wait');
        let latest = [d, attempts];
        for (let i = 0; i < 60 && latest[1].length <= attempts.length; i++) {
          await sleep(1000);
          latest = await fetchDelivery(d.id);
        }
        render(section, ...latest, 1, true);
      } catch (err) { status.say(err.message, 'bad'); }
    }) }, 'Resend');
    actions.append(resend);
  }
  const refresh = h('button', { type: 'button', class: 'secondary', onclick: () => busy(refresh, 'Refreshing…', async () => {
    try { render(section, ...(await fetchDelivery(d.id)), attempts.length ? 1 : 0); announce('Refreshed'); } catch (err) { status.say(err.message, 'bad'); }
  }) }, 'Refresh');
  actions.append(refresh);

  const req = d.request;
  const request = [
    h('p', { class: 'request-line' }, h('strong', {}, 'POST '), h('code', { class: 'url' }, req.url || '(the subscription no longer exists)')),
    h('h2', {}, 'Headers'), pairs(req.headers),
    h('h2', {}, 'Body'), req.payload == null ? h('p', { class: 'muted' }, 'The event is no longer stored.') : h('pre', { tabindex: '0', 'aria-label': 'Request body' }, json(req.payload)),
  ];
  const newest = [...attempts].sort((a, b) => b.attempt - a.attempt);
  const responses = newest.length ? newest.map(attempt) : h('p', { class: 'empty' }, 'No attempt yet.');
  section.replaceChildren(
    crumbs(h('a', { href: `#/subscriptions/${enc(d.subscription_id)}/deliveries` }, 'Deliveries'), h('span', { 'aria-current': 'page' }, d.event_id)),
    h('h1', {}, `Delivery of ${d.event_id}`),
    h('div', { class: 'card summary' }, pairs({
      'Delivery id': h('code', {}, d.id), 'Event type': h('code', {}, d.event_type), Result: result(d.status),
      ...(d.reason ? { Reason: d.reason } : {}),
      ...(d.next_attempt_at ? { 'Next attempt': time(d.next_attempt_at) } : {}),
      Attempts: d.attempts, 'Event occurred': time(d.occurred_at), 'First recorded': time(d.created_at),
      'Last attempt': time(d.last_attempt_at, 'none'), 'Last response': outcome(d.last_status_code, d.last_error_class),
    })),
    actions, status,
    tabs('Delivery', [{ label: 'Request', panel: request }, { label: `Responses (${attempts.length})`, panel: responses }], tab));
  if (focusNewest && newest.length) {
    const a = newest[0];
    status.say(`New attempt ${a.attempt}: ${outcome(a.status_code, a.error_class)}; the delivery is ${d.status}.`, d.status === 'delivered' ? 'ok' : d.status === 'failed' ? 'bad' : 'wait');
    section.querySelector('.attempt h3').focus();
  }
}

const TRIGGERS = { live: 'automatic', test: 'test event', redeliver: 'resend' };
function attempt(a) {
  const ok = a.status_code >= 200 && a.status_code < 300;
  let body = a.response_body;
  try { body = json(JSON.parse(body)); } catch { /* not JSON: as is */ }
  return h('article', { class: `attempt ${ok ? 'ok' : 'bad'}` },
    h('h3', { tabindex: '-1' }, h('span', { 'aria-hidden': 'true' }, ok ? '✓ ' : '✗ '), `Attempt ${a.attempt}: ${outcome(a.status_code, a.error_class)}`),
    h('p', { class: 'meta' }, time(a.started_at), ` · ${a.duration_ms} ms · ${TRIGGERS[a.trigger] || a.trigger}`),
    a.error_message && h('p', { class: 'field-error' }, a.error_message),
    h('h4', {}, 'Response headers'), pairs(a.response_headers),
    h('h4', {}, 'Response body'), body ? h('pre', { tabindex: '0', 'aria-label': `Response body of attempt ${a.attempt}` }, body) : h('p', { class: 'muted' }, 'empty'));
}
