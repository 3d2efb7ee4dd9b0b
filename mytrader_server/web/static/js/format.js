// Display formatting and DOM helpers. Amounts arrive as decimal strings and are only turned
// into numbers for display; nothing the app sends is computed from a float.

const usd = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });
const compact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });

export function money(value) {
  const n = Number(value);
  return Number.isFinite(n) ? usd.format(n) : "—";
}

/** A price with the precision it came with (2 decimals for stocks, up to 6 for small coins). */
export function price(value) {
  const n = Number(value);
  if (!Number.isFinite(n)) return "—";
  const digits = Math.abs(n) >= 1 ? 2 : 6;
  return n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function qty(value) {
  const n = Number(value);
  return Number.isFinite(n) ? n.toLocaleString("en-US", { maximumFractionDigits: 8 }) : "—";
}

export function volume(value) {
  const n = Number(value);
  return Number.isFinite(n) ? compact.format(n) : "—";
}

/** "+1.23%" / "−0.40%" with the sign spelled out (colour is never the only cue). */
export function percent(value) {
  const n = Number(value);
  if (!Number.isFinite(n)) return "—";
  const sign = n > 0 ? "+" : n < 0 ? "−" : "";
  return `${sign}${Math.abs(n).toFixed(2)}%`;
}

export function signedMoney(value) {
  const n = Number(value);
  if (!Number.isFinite(n)) return "—";
  const sign = n > 0 ? "+" : n < 0 ? "−" : "";
  return sign + usd.format(Math.abs(n));
}

export function time(value) {
  if (!value) return "";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? "" : d.toLocaleTimeString("en-US", { hour12: false });
}

export function trend(value) {
  const n = Number(value);
  return n > 0 ? "up" : n < 0 ? "down" : "flat";
}

/** Create an element: el("td", {class: "num"}, "text", childNode...). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function $(selector) {
  return document.querySelector(selector);
}
