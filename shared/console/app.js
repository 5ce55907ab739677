// The webhooks console: a single page on the public /v1 API. Hash routes:
//   #/subscriptions  #/subscriptions/new  #/subscriptions/ID/edit  #/subscriptions/ID/deliveries?status=&event_type=&limit=
//   #/deliveries/ID  #/event-types
import { api, ApiError, session, onUnauthorized } from './api.js';
import { h, field, showError, busy, announce } from './dom.js';
import { subscriptionList, subscriptionForm } from './subscriptions.js';
import { deliveryList, deliveryDetail } from './deliveries.js';
import { catalogue } from './catalogue.js';

const routes = [
  [/^\/subscriptions$/, subscriptionList],
  [/^\/subscriptions\/new$/, subscriptionForm],
  [/^\/subscriptions\/([^/]+)\/edit$/, subscriptionForm],
  [/^\/subscriptions\/([^/]+)\/deliveries$/, deliveryList],
  [/^\/deliveries\/([^/]+)$/, deliveryDetail],
  [/^\/event-types$/, catalogue],
];

const main = document.getElementById('app');
const nav = document.getElementById('nav');
let generation = 0;
let notice = null; // a message for the sign-in screen

/** Shows `view` in <main>, titles the page after its <h1> and moves focus there. */
function show(view) {
  main.replaceChildren(view);
  main.removeAttribute('aria-busy');
  const h1 = main.querySelector('h1');
  if (h1) {
    h1.tabIndex = -1;
    document.title = `${h1.textContent} · Webhooks console`;
    h1.focus();
  }
}

async function route() {
  const gen = ++generation;
  const [path, query = ''] = location.hash.replace(/^#/, '').split('?');
  nav.hidden = !session.key;
  if (!session.key) return show(signIn());
  const match = routes.map(([re, view]) => [path.match(re), view]).find(([m]) => m);
  if (!match) return location.replace('#/subscriptions');
  const [m, view] = match;
  const section = path.startsWith('/deliveries') ? '/subscriptions' : path;
  nav.querySelectorAll('a').forEach((a) => a.toggleAttribute('aria-current', section.startsWith(a.getAttribute('href').slice(1))));
  main.setAttribute('aria-busy', 'true');
  main.replaceChildren(h('p', { class: 'loading' }, 'Loading…'));
  let content;
  try {
    content = await view({ params: m.slice(1).map(decodeURIComponent), query: new URLSearchParams(query) });
  } catch (e) {
    content = failure(e);
  }
  if (gen === generation) show(content); // a newer navigation wins
}

function failure(e) {
  const back = h('p', {}, h('a', { href: '#/subscriptions' }, 'Back to subscriptions'));
  if (e instanceof ApiError) {
    const what = e.status === 404 ? 'Not found' : e.title;
    return h('section', {}, h('h1', {}, what), h('p', { class: 'form-error', role: 'alert' }, e.message), back);
  }
  return h('section', {}, h('h1', {}, 'Something went wrong'), h('p', { class: 'form-error', role: 'alert' }, String(e.message || e)), back);
}

function signIn() {
  const input = h('input', { name: 'key', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true, placeholder: 'whk_…' });
  const submit = h('button', { type: 'submit' }, 'Sign in');
  const form = h('form', { novalidate: true, class: 'card narrow' },
    field('API key', input, { hint: 'It stays in this browser tab only and is sent only to this service.' }), submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const key = input.value.trim();
    if (!/^whk_[0-9a-f]{48}$/.test(key)) {
      return showError(form, { field: 'key', message: 'An API key is whk_ followed by 48 hexadecimal characters.' });
    }
    session.set(key);
    try {
      await busy(submit, 'Checking…', () => api('GET', '/event-types', undefined, { quiet: true }));
    } catch (err) {
      if (err.status !== 403) { // 403: a valid key without the read scope: let it in
        session.clear();
        return showError(form, { field: 'key', message: err.status === 401 ? 'This API key is not valid (or was revoked).' : err.message });
      }
    }
    notice = null;
    announce('Signed in');
    if (!routes.some(([re]) => re.test(location.hash.slice(1).split('?')[0]))) location.hash = '#/subscriptions';
    else route();
  });
  return h('section', {}, h('h1', {}, 'Sign in'),
    notice && h('p', { class: 'form-error', role: 'alert' }, notice),
    h('p', {}, 'Paste an API key of your account to see, test and resend your webhooks.'), form);
}

onUnauthorized(() => {
  session.clear();
  notice = 'Your API key was not accepted any more. Sign in again.';
  route();
});

document.getElementById('signout').addEventListener('click', () => {
  session.clear();
  announce('Signed out');
  route();
});

document.getElementById('skip').addEventListener('click', (e) => {
  e.preventDefault(); // the hash is the route: focus <main> instead of jumping to #app
  main.focus();
});

window.addEventListener('hashchange', route);
route();
