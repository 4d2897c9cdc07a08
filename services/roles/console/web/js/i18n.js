// The reader's language: Chinese or English, chosen from the browser's language until the reader
// picks one (kept in localStorage, as it is a preference, not a credential). Every string the
// console shows comes from the two dictionaries through t().

import en from './lang/en.js';
import zh from './lang/zh.js';

const DICTIONARIES = { en, zh };
const KEY = 'sb.lang';
const listeners = new Set();

let current = localStorage.getItem(KEY) || (navigator.language.toLowerCase().startsWith('zh') ? 'zh' : 'en');
document.documentElement.lang = current;

export function lang() {
  return current;
}

export function languages() {
  return Object.keys(DICTIONARIES);
}

export function setLang(next) {
  if (!DICTIONARIES[next] || next === current) return;
  current = next;
  localStorage.setItem(KEY, next);
  document.documentElement.lang = next;
  for (const f of listeners) f(next);
}

/** Calls `f` whenever the language changes. */
export function onLangChange(f) {
  listeners.add(f);
}

/**
 * Of a text the server words in both languages (a decision's review reason, the escalation reasons), the
 * reader's: the Chinese when reading Chinese and it is there; a decision made before the router wrote
 * Chinese has only the English.
 */
export function localized(en, zh) {
  return current === 'zh' && zh?.length ? zh : en;
}

/** The string for `key` with `{name}` placeholders filled; the key itself when neither dictionary has it, so a gap shows. */
export function t(key, params = {}) {
  const text = DICTIONARIES[current][key] ?? DICTIONARIES.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in params ? String(params[name]) : `{${name}}`));
}
