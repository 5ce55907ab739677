// A subscription's health over a window, drawn as SVG from GET /v1/subscriptions/{id}/stats:
// deliveries per bucket (stacked: delivered, failed, pending), and the attempts' p95 duration
// as a line. No library, nothing inline: elements built with createElementNS (the CSP holds).
import { api, qs } from './api.js';
import { h, enc } from './dom.js';

const NS = 'http://www.w3.org/2000/svg';
const W = 640;
const H = 160;
const PAD = { left: 40, right: 8, top: 8, bottom: 22 };

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c != null && c !== false) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

const label = (iso, bucket) => {
  const d = new Date(iso);
  return bucket === '1h' ? `${String(d.getHours()).padStart(2, '0')}:00` : d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
};

/** Stacked bars: one group per bucket, its counts in data- attributes (what the browser test reads). */
function deliveriesChart(stats) {
  const b = stats.buckets;
  const max = Math.max(1, ...b.map((x) => x.deliveries));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const slot = plotW / b.length;
  const y = (n) => PAD.top + plotH - (n / max) * plotH;
  const bars = b.map((x, i) => {
    const left = PAD.left + i * slot + slot * 0.15;
    const width = slot * 0.7;
    let base = 0;
    const part = (n, cls) => {
      if (!n) return null;
      const r = svg('rect', { class: cls, x: left.toFixed(1), width: width.toFixed(1), y: y(base + n).toFixed(1), height: (y(base) - y(base + n)).toFixed(1) });
      base += n;
      return r;
    };
    const when = label(x.start, stats.bucket);
    return svg('g', { class: 'bar', 'data-start': x.start, 'data-delivered': x.delivered, 'data-failed': x.failed, 'data-pending': x.pending },
      svg('title', {}, `${when}: ${x.delivered} delivered, ${x.failed} failed, ${x.pending} pending`),
      part(x.delivered, 'delivered'), part(x.failed, 'failed'), part(x.pending, 'pending'));
  });
  const every = Math.ceil(b.length / 8);
  const ticks = b.map((x, i) => (i % every ? null : svg('text', { class: 'tick', x: (PAD.left + i * slot + slot / 2).toFixed(1), y: H - 6, 'text-anchor': 'middle' }, label(x.start, stats.bucket))));
  return svg('svg', { class: 'chart deliveries-chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `Deliveries per ${stats.bucket === '1h' ? 'hour' : 'day'}: delivered, failed and pending` },
    svg('text', { class: 'tick', x: PAD.left - 6, y: PAD.top + 8, 'text-anchor': 'end' }, String(max)),
    svg('text', { class: 'tick', x: PAD.left - 6, y: PAD.top + plotH, 'text-anchor': 'end' }, '0'),
    svg('line', { class: 'axis', x1: PAD.left, x2: W - PAD.right, y1: PAD.top + plotH, y2: PAD.top + plotH }),
    bars, ticks);
}

/** The p95 attempt duration per bucket, as a line through the buckets that had attempts. */
function latencyChart(stats) {
  const b = stats.buckets;
  const max = Math.max(1, ...b.map((x) => x.p95_ms ?? 0));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H / 2 - PAD.top - PAD.bottom;
  const slot = plotW / b.length;
  const points = b.map((x, i) => (x.p95_ms == null ? null : [PAD.left + i * slot + slot / 2, PAD.top + plotH - (x.p95_ms / max) * plotH, x]));
  const shown = points.filter(Boolean);
  return svg('svg', { class: 'chart latency-chart', viewBox: `0 0 ${W} ${H / 2}`, role: 'img', 'aria-label': 'p95 attempt duration per bucket, in milliseconds' },
    svg('text', { class: 'tick', x: PAD.left - 6, y: PAD.top + 8, 'text-anchor': 'end' }, `${max} ms`),
    svg('line', { class: 'axis', x1: PAD.left, x2: W - PAD.right, y1: PAD.top + plotH, y2: PAD.top + plotH }),
    shown.length > 1 && svg('polyline', { class: 'p95', points: shown.map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join(' ') }),
    shown.map(([px, py, x]) => svg('circle', { class: 'p95-point', cx: px.toFixed(1), cy: py.toFixed(1), r: 3, 'data-p95': x.p95_ms }, svg('title', {}, `${label(x.start, stats.bucket)}: p95 ${x.p95_ms} ms`))));
}

const percent = (r) => (r == null ? '—' : `${Math.round(r * 1000) / 10} %`);

/** The health card of a subscription: a window switch, the totals in words, the two charts. */
export function healthCard(id) {
  const body = h('div', { class: 'health-body', 'aria-live': 'polite' });
  const show = async (window) => {
    body.setAttribute('aria-busy', 'true');
    try {
      const s = await api('GET', `/subscriptions/${enc(id)}/stats${qs({ window })}`);
      const t = s.totals;
      const classes = Object.entries(s.failures_by_class).map(([k, n]) => `${k} ${n}`).join(', ');
      body.replaceChildren(
        h('p', { class: 'health-summary', 'data-deliveries': t.deliveries, 'data-delivered': t.delivered, 'data-failed': t.failed },
          `${t.deliveries} deliveries · ${percent(t.success_rate)} delivered · p50 ${t.p50_ms ?? '—'} ms, p95 ${t.p95_ms ?? '—'} ms`,
          classes ? ` · failed attempts: ${classes}` : '', s.truncated ? ' · (the newest 5,000 only)' : ''),
        deliveriesChart(s), latencyChart(s),
        h('p', { class: 'legend' }, h('span', { class: 'key delivered' }), ' delivered ', h('span', { class: 'key failed' }), ' failed ', h('span', { class: 'key pending' }), ' pending · line: p95 attempt duration'));
    } catch (err) {
      body.replaceChildren(h('p', { class: 'form-error', role: 'alert' }, err.message));
    } finally {
      body.removeAttribute('aria-busy');
    }
  };
  const buttons = [['24h', 'Last 24 hours'], ['7d', 'Last 7 days']].map(([w, text]) => {
    const b = h('button', { type: 'button', class: 'secondary', 'aria-pressed': String(w === '24h'), onclick: () => {
      buttons.forEach((x) => x.setAttribute('aria-pressed', String(x === b)));
      show(w);
    } }, text);
    return b;
  });
  show('24h');
  return h('div', { class: 'card health' }, h('div', { class: 'head' }, h('h2', {}, 'Health'), h('div', { class: 'actions' }, buttons)), body);
}
