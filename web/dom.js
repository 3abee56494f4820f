// A tiny element builder: text always goes in as text, never as HTML.

/** h('button', {class: 'x', onclick: f}, 'Save') → <button class="x">Save</button> */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'value' || key === 'checked') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  el.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

/** <option>s for the values, with `selected` chosen; labels default to the values. */
export function options(values, selected, label = String) {
  return values.map((v) => h('option', { value: v, selected: String(v) === String(selected) }, label(v)));
}

export const CLEARANCES = [0, 1, 2, 3, 4, 5];

/** "Showing 11–20 of 23" and Previous/Next buttons; `go(offset)` loads a page. */
export function pager(offset, count, total, pageSize, go, noun) {
  const first = total === 0 ? 0 : offset + 1;
  const summary = total === 0 ? `No ${noun}s` : `Showing ${first}–${offset + count} of ${total} ${total === 1 ? noun : `${noun}s`}`;
  const nav = h('nav', { class: 'pager', 'aria-label': 'Pages' },
    h('button', { type: 'button', disabled: offset === 0, onclick: () => go(Math.max(0, offset - pageSize)) }, '← Previous'),
    h('span', { class: 'page' }, `Page ${Math.floor(offset / pageSize) + 1} of ${Math.max(1, Math.ceil(total / pageSize))}`),
    h('button', { type: 'button', disabled: offset + count >= total, onclick: () => go(offset + pageSize) }, 'Next →'));
  nav.hidden = total <= pageSize && offset === 0;
  return [h('p', { class: 'count', role: 'status' }, summary), nav];
}
