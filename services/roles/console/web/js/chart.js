// Charts as SVG built node by node from the figures the tables beside them show: no markup is
// parsed and no style is inlined, so the strict Content-Security-Policy holds and a label can never
// become markup. Every bar carries a <title>, so hovering it reads its exact value.

const SVG = 'http://www.w3.org/2000/svg';
// The drawing is this many pixels wide, and never shown wider (console.css), so its 11 px text stays 11 px.
const WIDTH = 960;

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function frame(id, title, height, ...content) {
  return svg('svg', { id, class: 'chart', viewBox: `0 0 ${WIDTH} ${height}`, role: 'img', 'aria-label': title },
    svg('title', {}, title), ...content);
}

/**
 * Stacked columns over time. `points` are `{label, values}` with one value per entry of `series`
 * (`{name, class}`, stacked bottom up); every `labelEvery`-th label is written under the axis.
 */
export function columns({ id, title, points, series, labelEvery = 1, format = String }) {
  const height = 180;
  const top = 16;
  const bottom = height - 22;
  const left = 36;
  const step = (WIDTH - left) / Math.max(1, points.length);
  const max = Math.max(1, ...points.map((p) => p.values.reduce((a, b) => a + b, 0)));
  const bars = points.map((p, i) => {
    let y = bottom;
    const stack = p.values.map((value, s) => {
      const h = ((bottom - top) * value) / max;
      y -= h;
      return value > 0
        ? svg('rect', { x: left + i * step + 1, y, width: Math.max(1, step - 2), height: h, class: series[s].class, 'data-value': value },
          svg('title', {}, `${p.label} · ${series[s].name}: ${format(value)}`))
        : null;
    });
    const label = i % labelEvery === 0 ? svg('text', { x: left + i * step + step / 2, y: height - 6, class: 'tick', 'text-anchor': 'middle' }, p.label) : null;
    return svg('g', { 'data-label': p.label }, stack, label);
  });
  return frame(id, title, height,
    svg('line', { x1: left, y1: bottom, x2: WIDTH, y2: bottom, class: 'axis' }),
    svg('text', { x: left - 4, y: top + 4, class: 'tick', 'text-anchor': 'end' }, format(max)),
    svg('text', { x: left - 4, y: bottom, class: 'tick', 'text-anchor': 'end' }, format(0)),
    bars);
}

/**
 * Horizontal bars, one group per row: `rows` are `{label, values}` with one value per entry of
 * `series` (`{name, class}`), all on one scale.
 */
export function bars({ id, title, rows, series, format = String }) {
  const barHeight = 10;
  const group = series.length * barHeight + 10;
  const left = 170;
  const right = 90;
  const height = Math.max(1, rows.length) * group + 6;
  const max = Math.max(1e-9, ...rows.flatMap((r) => r.values));
  const groups = rows.map((r, i) => {
    const y = 4 + i * group;
    return svg('g', { 'data-label': r.label },
      svg('text', { x: left - 6, y: y + (series.length * barHeight) / 2 + 4, class: 'tick', 'text-anchor': 'end' }, r.label),
      r.values.map((value, s) => {
        const w = ((WIDTH - left - right) * value) / max;
        return [
          svg('rect', { x: left, y: y + s * barHeight, width: Math.max(1, w), height: barHeight - 2, class: series[s].class, 'data-value': value },
            svg('title', {}, `${r.label} · ${series[s].name}: ${format(value)}`)),
          svg('text', { x: left + w + 4, y: y + s * barHeight + barHeight - 2, class: 'tick' }, format(value)),
        ];
      }));
  });
  return frame(id, title, height, groups);
}

/** The series' names beside their colours. */
export function legend(series) {
  const item = (s) => {
    const swatch = svg('svg', { class: 'swatch', viewBox: '0 0 10 10', 'aria-hidden': 'true' }, svg('rect', { width: 10, height: 10, class: s.class }));
    const span = document.createElement('span');
    span.append(swatch, ` ${s.name}`);
    return span;
  };
  const node = document.createElement('p');
  node.className = 'legend';
  node.append(...series.map(item));
  return node;
}
