// DOM helpers. Everything is built with createElement/textContent: API data never goes through
// innerHTML, and there are no inline handlers or styles (the page's CSP forbids both).

let uid = 0;
export const nextId = (p = 'el') => `${p}-${++uid}`;

/** h('a', {href, class, onclick}, 'text', child, [more]) */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'value' || k === 'checked') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) if (c != null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

export const enc = encodeURIComponent;
export const json = (v) => JSON.stringify(v, null, 2);

export function time(iso, empty = '—') {
  if (!iso) return empty;
  const d = new Date(iso);
  return h('time', { datetime: iso, title: iso }, d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' }));
}

/** Polite announcements for screen readers (the #status live region of index.html). */
export function announce(msg) {
  const el = document.getElementById('status');
  el.textContent = '';
  requestAnimationFrame(() => { el.textContent = msg; });
}

/** A labelled form control with a hint and a slot for the API's error about `field`. */
export function field(label, control, { hint, field: name } = {}) {
  control.id ||= nextId('f');
  const hintEl = hint && h('p', { class: 'hint', id: nextId('hint') }, hint);
  const err = h('p', { class: 'field-error', id: nextId('err'), hidden: true });
  control.setAttribute('aria-describedby', [hintEl?.id, err.id].filter(Boolean).join(' '));
  return h('div', { class: 'field', 'data-field': name || control.name }, h('label', { for: control.id }, label), hintEl, control, err);
}

/** A fieldset (group of controls) that can also carry an error. */
export function group(legend, name, ...children) {
  const err = h('p', { class: 'field-error', id: nextId('err'), hidden: true });
  return h('fieldset', { 'data-field': name, 'aria-describedby': err.id }, h('legend', {}, legend), ...children, err);
}

export function clearErrors(form) {
  form.querySelectorAll('.field-error, .form-error').forEach((e) => { e.hidden = true; e.textContent = ''; });
  form.querySelectorAll('[aria-invalid]').forEach((e) => e.removeAttribute('aria-invalid'));
}

/** Shows an API problem in words next to the field it names (`events[0]` → events, `auth.password` …). */
export function showError(form, err) {
  clearErrors(form);
  const name = err.field || '';
  const candidates = [];
  for (let n = name, up; n; n = up) { // headers.X-Team → headers; events[0] → events
    candidates.push(n);
    if ((up = n.replace(/(\[\d+\]|\.[^.[]*)$/, '')) === n) break;
  }
  // A field in a hidden panel (another auth type, say) cannot show it: its group does instead.
  const box = candidates.map((n) => form.querySelector(`[data-field="${CSS.escape(n)}"]`)).find((b) => b && !b.closest('[hidden]'));
  const text = err.message || 'Something went wrong.';
  if (box) {
    // A field in a closed <details> (mTLS) would keep its error out of sight: open it.
    for (let d = box.closest('details'); d; d = d.parentElement?.closest('details')) d.open = true;
    const slot = box.querySelector(':scope > .field-error');
    const rest = name.slice(box.dataset.field.length);
    const sub = rest.startsWith('.') ? `${rest.slice(1)}: ` : '';
    slot.textContent = sub + text;
    slot.hidden = false;
    const control = box.matches('fieldset, details') ? box : box.querySelector('input, select, textarea');
    control.setAttribute('aria-invalid', 'true');
    (box.querySelector('input, select, textarea') || box).focus();
  } else {
    let top = form.querySelector(':scope > .form-error');
    if (!top) form.prepend(top = h('p', { class: 'form-error', role: 'alert', tabindex: '-1' }));
    top.textContent = err.field ? `${err.field}: ${text}` : text;
    top.hidden = false;
    top.focus();
  }
  announce(`Error: ${text}`);
}

/** Runs fn while `button` shows a busy label (for slow calls). */
export async function busy(button, label, fn) {
  const old = button.textContent;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  button.textContent = label;
  try { return await fn(); } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    button.textContent = old;
  }
}

export function copyButton(getText, label = 'Copy') {
  const b = h('button', { type: 'button', class: 'secondary', onclick: async () => {
    const text = getText();
    try { await navigator.clipboard.writeText(text); } catch {
      const t = h('textarea', { class: 'offscreen', readonly: true, value: text });
      document.body.append(t); t.select(); document.execCommand('copy'); t.remove();
    }
    b.textContent = 'Copied ✓';
    announce('Copied to the clipboard');
    setTimeout(() => { b.textContent = label; }, 2000);
  } }, label);
  return b;
}

/** Tabs with roving focus: ←/→/Home/End move between tabs (ARIA tabs pattern). */
export function tabs(label, items, selected = 0) {
  const base = nextId('tabs');
  const list = h('div', { role: 'tablist', 'aria-label': label, class: 'tablist' });
  const buttons = [];
  const panels = items.map((it, i) => h('div', { role: 'tabpanel', id: `${base}-p${i}`, 'aria-labelledby': `${base}-t${i}`, tabindex: '0', class: 'tabpanel' }, it.panel));
  const select = (i, focus) => buttons.forEach((b, j) => {
    b.setAttribute('aria-selected', String(i === j));
    b.tabIndex = i === j ? 0 : -1;
    panels[j].hidden = i !== j;
    if (i === j && focus) b.focus();
  });
  items.forEach((it, i) => {
    const b = h('button', { type: 'button', role: 'tab', id: `${base}-t${i}`, 'aria-controls': `${base}-p${i}`, onclick: () => select(i, true) }, it.label);
    buttons.push(b);
    list.append(b);
  });
  list.addEventListener('keydown', (e) => {
    const i = buttons.indexOf(document.activeElement), n = buttons.length;
    const to = { ArrowRight: (i + 1) % n, ArrowLeft: (i - 1 + n) % n, Home: 0, End: n - 1 }[e.key];
    if (i >= 0 && to !== undefined) { e.preventDefault(); select(to, true); }
  });
  select(selected, false);
  return h('div', { class: 'tabs' }, list, panels);
}

/** A table that turns into labelled cards at phone width (each cell carries its column name). */
export function table(caption, columns, rows) {
  const tbody = h('tbody');
  const add = (items) => items.forEach((r) => tbody.append(h('tr', {}, r.map((cell, i) => h('td', { 'data-label': columns[i] }, cell)))));
  add(rows);
  const el = h('table', {}, h('caption', { class: 'sr-only' }, caption), h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c)))), tbody);
  return { el, add, tbody };
}

/** Key/value pairs (headers, summaries) as a description list. */
export function pairs(obj, empty = 'none') {
  const entries = Object.entries(obj || {});
  if (!entries.length) return h('p', { class: 'muted' }, empty);
  return h('dl', { class: 'pairs' }, entries.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v instanceof Node ? v : String(v))]));
}

/** "Load more" under a table: fetches the next page with the cursor and appends it. */
export function loadMore(cursor, next, tbody) {
  const err = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const b = h('button', { type: 'button', class: 'secondary', hidden: !cursor, onclick: () => busy(b, 'Loading…', async () => {
    const before = tbody.rows.length;
    try {
      cursor = await next(cursor);
      err.hidden = true;
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
      return;
    }
    b.hidden = !cursor;
    tbody.rows[before]?.querySelector('a, button')?.focus();
    announce(`${tbody.rows.length - before} more loaded${cursor ? '' : '; that is all'}`);
  }) }, 'Load more');
  return h('div', { class: 'pager' }, b, err);
}

let flashed = null;
/** A message for the next view (e.g. "Saved" after a redirect). */
export const flash = (msg) => { flashed = msg; };
export function takeFlash() {
  const msg = flashed;
  flashed = null;
  if (!msg) return null;
  announce(msg);
  return h('p', { class: 'notice ok' }, msg);
}

/** A live region for the outcome of an action on the page. */
export function notice() {
  const el = h('div', { class: 'notice', role: 'status' }); // present (empty) from the start, so it is announced
  el.say = (msg, kind = 'ok', ...more) => {
    el.className = `notice ${kind}`;
    el.replaceChildren(msg, ...more);
  };
  return el;
}
