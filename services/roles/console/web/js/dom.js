// Building the page from data without ever parsing data as markup: every string becomes a text
// node (textContent), so a script tag in ticket text shows as the characters typed.

/** An element: `el('td', {class: 'num', on: {click: f}, data: {id}}, 'text', childNode, …)`. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'on') for (const [type, f] of Object.entries(value)) node.addEventListener(type, f);
    else if (key === 'data') for (const [k, v] of Object.entries(value)) node.dataset[k] = v;
    else if (key === 'value') node.value = value;
    else if (key === 'checked') node.checked = Boolean(value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces everything inside `node`. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** A <select> of `[value, label]` pairs with `selected` chosen. */
export function select(attrs, options, selected) {
  return el('select', attrs, options.map(([value, label]) =>
    el('option', { value, selected: value === selected ? 'selected' : false }, label)));
}
