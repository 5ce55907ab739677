// The event-type catalogue: names, descriptions, example payloads and JSON Schemas.
import { eventTypes } from './api.js';
import { h, json, field, announce } from './dom.js';

export async function catalogue() {
  const types = await eventTypes();
  const cards = types.map((t) => h('article', { class: 'card event-type', 'data-name': t.name },
    h('h2', {}, h('code', {}, t.name)),
    h('p', {}, t.description),
    h('h3', {}, 'Example data'),
    h('pre', { tabindex: '0', 'aria-label': `Example data of ${t.name}` }, json(t.example)),
    h('details', {}, h('summary', {}, 'JSON Schema of data'), h('pre', { tabindex: '0', 'aria-label': `JSON Schema of ${t.name}` }, json(t.schema)))));
  const filter = h('input', { type: 'search', name: 'filter', autocomplete: 'off', placeholder: 'e.g. visit' });
  filter.addEventListener('input', () => {
    const q = filter.value.trim().toLowerCase();
    for (const c of cards) c.hidden = !c.textContent.toLowerCase().includes(q);
    announce(`${cards.filter((c) => !c.hidden).length} of ${cards.length} event types`);
  });
  return h('section', {},
    h('h1', {}, 'Event types'),
    h('p', {}, 'Subscribe to a name, a prefix such as ', h('code', {}, 'project.*'), ', or ', h('code', {}, '*'), ' for everything. Each delivery POSTs the envelope ',
      h('code', {}, '{event_id, event_type, tenant_id, occurred_at, data}'), '; below are examples of its ', h('code', {}, 'data'), '.'),
    h('div', { class: 'filters' }, field('Filter', filter)),
    h('div', { class: 'event-types' }, cards));
}
