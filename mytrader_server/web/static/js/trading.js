// The order ticket and the order lists (open orders, recent activity), kept live by OrderUpdate.

import { $, el, price, qty, time } from "./format.js";

const DECIMAL = /^\d+(\.\d+)?$/;
const OPEN = new Set(["accepted", "new", "partially_filled", "pending_new", "pending_cancel"]);
const ACTIVITY_ROWS = 20;

/** Client-side checks before sending; the API's own message is shown for anything else. */
export function validateTicket(form) {
  const errors = [];
  const symbol = form.symbol.trim().toUpperCase();
  if (!symbol) errors.push("Enter a symbol.");
  if (!DECIMAL.test(form.qty) || Number(form.qty) <= 0) errors.push("Quantity must be a positive number.");
  if (form.type === "limit" && (!DECIMAL.test(form.limit_price) || Number(form.limit_price) <= 0)) {
    errors.push("A limit order needs a positive limit price.");
  }
  const order = {
    symbol,
    qty: form.qty,
    side: form.side,
    type: form.type,
    time_in_force: form.time_in_force,
  };
  if (form.type === "limit") order.limit_price = form.limit_price;
  return { order, errors };
}

export class OrderTicket extends EventTarget {
  constructor(api, quoteOf) {
    super();
    this.api = api;
    this.quoteOf = quoteOf;
    this.form = $("#ticket");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.form.addEventListener("input", () => this.sync());
    this.form.addEventListener("change", () => this.sync());
    this.sync();
  }

  values() {
    const data = new FormData(this.form);
    return Object.fromEntries([...data.entries()].map(([k, v]) => [k, String(v).trim()]));
  }

  pick(symbol) {
    this.form.elements.symbol.value = symbol;
    this.sync();
    this.form.elements.qty.focus();
  }

  /** Show the limit field only for limit orders; label the button with what it will do. */
  sync() {
    const v = this.values();
    const limit = v.type === "limit";
    this.form.classList.toggle("is-limit", limit);
    this.form.elements.limit_price.required = limit;
    const button = $("#t-submit");
    button.textContent = `Place ${v.side} order`;
    button.dataset.side = v.side;
    this.showQuote();
  }

  showQuote() {
    const symbol = (this.form.elements.symbol.value || "").trim().toUpperCase();
    const q = this.quoteOf(symbol);
    $("#t-quote").textContent = q ? `${symbol} bid ${price(q.bid)} · ask ${price(q.ask)}` : "";
  }

  async submit() {
    const errorBox = $("#ticket-error");
    const okBox = $("#ticket-ok");
    errorBox.textContent = "";
    okBox.textContent = "";
    const { order, errors } = validateTicket(this.values());
    if (errors.length) {
      errorBox.textContent = errors.join(" ");
      return;
    }
    const button = $("#t-submit");
    button.disabled = true;
    try {
      const placed = await this.api.placeOrder(order);
      okBox.textContent = `Order ${placed.status}: ${placed.side} ${qty(placed.qty)} ${placed.symbol}` +
        (placed.limit_price ? ` @ ${price(placed.limit_price)}` : "");
      this.dispatchEvent(new CustomEvent("placed", { detail: placed }));
    } catch (error) {
      errorBox.textContent = error.message;
    } finally {
      button.disabled = false;
    }
  }
}

export class Orders extends EventTarget {
  constructor(api) {
    super();
    this.api = api;
    this.open = new Map();
    this.activity = new Map();
  }

  /** Forget everything (sign-out): the next user must never see these orders. */
  reset() {
    this.open.clear();
    this.activity.clear();
    this.render();
  }

  async load() {
    const [open, closed] = await Promise.all([this.api.orders("open", 100), this.api.orders("closed", ACTIVITY_ROWS)]);
    this.open = new Map(open.map((o) => [o.id, o]));
    this.activity = new Map(closed.map((o) => [o.id, o]));
    this.render();
  }

  /** An OrderUpdate push (or the REST answer to our own POST): move the order where it belongs. */
  apply(order) {
    const known = this.open.get(order.id) || this.activity.get(order.id);
    if (known && !OPEN.has(known.status) && OPEN.has(order.status)) return; // final stays final
    if (known && known.updated_at && order.updated_at && known.updated_at > order.updated_at) return;
    if (OPEN.has(order.status)) {
      this.open.set(order.id, order);
      this.activity.delete(order.id);
    } else {
      this.open.delete(order.id);
      this.activity.set(order.id, order);
    }
    if (order.status === "partially_filled") this.activity.set(order.id, order);
    this.render();
  }

  onUpdate(update) {
    const order = update.order;
    if (!order) return;
    this.apply(order);
    if (update.event === "fill" || update.event === "partial_fill") {
      this.dispatchEvent(
        new CustomEvent("notice", {
          detail: `${update.event === "fill" ? "Filled" : "Partly filled"}: ${order.side} ${qty(order.filled_qty)} ${order.symbol} @ ${price(order.filled_avg_price)}`,
        }),
      );
    } else if (update.event === "rejected") {
      this.dispatchEvent(new CustomEvent("notice", { detail: `Rejected: ${order.symbol} ${order.reject_reason || ""}` }));
    }
  }

  async cancel(order, button) {
    button.disabled = true;
    try {
      await this.api.cancelOrder(order.id);
    } catch (error) {
      this.dispatchEvent(new CustomEvent("notice", { detail: `Cancel failed: ${error.message}` }));
      button.disabled = false;
    }
  }

  render() {
    const open = [...this.open.values()].sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
    $("#open-orders tbody").replaceChildren(
      ...open.map((o) =>
        el(
          "tr",
          { dataset: { id: o.id, status: o.status, symbol: o.symbol } },
          el("th", { scope: "row" }, o.symbol),
          el("td", { class: `side ${o.side}` }, o.side),
          el("td", { class: "num" }, qty(o.qty)),
          el("td", { class: "hide-sm" }, o.type),
          el("td", { class: "num" }, o.limit_price ? price(o.limit_price) : "—"),
          el("td", { class: "status" }, o.status.replace("_", " ")),
          el("td", { class: "actions" }, el("button", { type: "button", class: "btn small ghost", "aria-label": `Cancel ${o.side} ${o.symbol}`, onclick: (e) => this.cancel(o, e.currentTarget) }, "Cancel")),
        ),
      ),
    );
    $("#open-empty").hidden = open.length > 0;
    const done = [...this.activity.values()]
      .sort((a, b) => ((a.updated_at || "") < (b.updated_at || "") ? 1 : -1))
      .slice(0, ACTIVITY_ROWS);
    $("#fills tbody").replaceChildren(
      ...done.map((o) =>
        el(
          "tr",
          { dataset: { id: o.id, status: o.status, symbol: o.symbol } },
          el("td", { class: "hide-sm muted" }, time(o.filled_at || o.updated_at)),
          el("th", { scope: "row" }, o.symbol),
          el("td", { class: `side ${o.side}` }, o.side),
          el("td", { class: "num" }, qty(Number(o.filled_qty) > 0 ? o.filled_qty : o.qty)),
          el("td", { class: "num" }, o.filled_avg_price ? price(o.filled_avg_price) : "—"),
          el("td", { class: "status" }, o.status.replace("_", " ")),
        ),
      ),
    );
  }
}
