// Market panels: the watchlist (live from the market-data hub), most active and movers (polled).

import { $, el, percent, price, trend, volume } from "./format.js";

export const DEFAULT_WATCHLIST = ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "SPY", "BTCUSD", "ETHUSD"];
const POLL_MS = 5000;

export class Watchlist extends EventTarget {
  constructor(api) {
    super();
    this.api = api;
    this.symbols = [...DEFAULT_WATCHLIST];
    this.quotes = new Map(); // symbol -> {price, bid, ask, prev_close, ...}
    this.rows = new Map();
    this.known = new Set();
    this.body = $("#watchlist tbody");
    $("#watch-add").addEventListener("submit", (event) => {
      event.preventDefault();
      this.add($("#watch-symbol").value);
    });
  }

  setUniverse(assets) {
    this.known = new Set(assets.map((a) => a.symbol));
    const list = $("#symbol-list");
    list.replaceChildren(...assets.map((a) => el("option", { value: a.symbol }, a.name)));
  }

  async load() {
    const quotes = await this.api.quotes(this.symbols);
    for (const q of quotes) this.quotes.set(q.symbol, q);
    this.render();
  }

  add(raw) {
    const symbol = raw.trim().toUpperCase();
    const error = $("#watch-error");
    error.textContent = "";
    if (!symbol) return;
    if (this.known.size && !this.known.has(symbol)) {
      error.textContent = `Unknown symbol ${symbol}.`;
      return;
    }
    $("#watch-symbol").value = "";
    if (this.symbols.includes(symbol)) return;
    this.symbols.push(symbol);
    this.render();
    this.api.quotes([symbol]).then(
      ([q]) => q && this.onTick(q),
      () => {},
    );
    this.dispatchEvent(new CustomEvent("change"));
  }

  remove(symbol) {
    this.symbols = this.symbols.filter((s) => s !== symbol);
    this.render();
    this.dispatchEvent(new CustomEvent("change"));
  }

  /** A ReceiveMarketData push (or a REST quote): update the row in place, flash its price. */
  onTick(tick) {
    const old = this.quotes.get(tick.symbol);
    const merged = { ...(old || {}), ...tick };
    this.quotes.set(tick.symbol, merged);
    this.dispatchEvent(new CustomEvent("tick", { detail: merged }));
    const row = this.rows.get(tick.symbol);
    if (!row) return;
    this.fill(row, merged);
    if (old && Number(old.price) !== Number(merged.price)) {
      const cell = row.querySelector(".price");
      cell.classList.remove("flash-up", "flash-down");
      void cell.offsetWidth; // restart the animation
      cell.classList.add(Number(merged.price) > Number(old.price) ? "flash-up" : "flash-down");
    }
  }

  fill(row, q) {
    row.querySelector(".price").textContent = price(q.price);
    row.querySelector(".bid").textContent = price(q.bid);
    row.querySelector(".ask").textContent = price(q.ask);
    const change = row.querySelector(".change");
    const pct = q.prev_close ? ((Number(q.price) - Number(q.prev_close)) / Number(q.prev_close)) * 100 : q.change_percent;
    change.textContent = percent(pct);
    change.dataset.trend = trend(pct);
  }

  render() {
    this.rows.clear();
    const rows = this.symbols.map((symbol) => {
      const row = el(
        "tr",
        { dataset: { symbol } },
        el("th", { scope: "row" }, el("button", { type: "button", class: "link", title: `Trade ${symbol}`, onclick: () => this.dispatchEvent(new CustomEvent("pick", { detail: symbol })) }, symbol)),
        el("td", { class: "num price" }, "—"),
        el("td", { class: "num bid hide-sm" }, "—"),
        el("td", { class: "num ask hide-sm" }, "—"),
        el("td", { class: "num change" }, "—"),
        el("td", { class: "actions" }, el("button", { type: "button", class: "icon", "aria-label": `Remove ${symbol}`, onclick: () => this.remove(symbol) }, "×")),
      );
      this.rows.set(symbol, row);
      const q = this.quotes.get(symbol);
      if (q) this.fill(row, q);
      return row;
    });
    this.body.replaceChildren(...rows);
  }
}

export class MarketPanels {
  constructor(api) {
    this.api = api;
    this.timer = null;
  }

  start() {
    this.stop();
    const tick = async () => {
      await this.refresh();
      this.timer = setTimeout(tick, POLL_MS);
    };
    tick();
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = null;
  }

  async refresh() {
    try {
      const [leaders, movers] = await Promise.all([this.api.volumeLeaders(8), this.api.movers(4)]);
      $("#leaders").replaceChildren(
        ...leaders.most_actives.map((row) =>
          el("li", {}, el("span", { class: "sym" }, row.symbol), el("span", { class: "num" }, volume(row.volume), el("span", { class: "muted" }, " vol"))),
        ),
      );
      const mover = (row) =>
        el(
          "li",
          {},
          el("span", { class: "sym" }, row.symbol),
          el("span", { class: "num" }, price(row.price), " ", el("span", { class: "change", dataset: { trend: trend(row.percent_change) } }, percent(row.percent_change))),
        );
      $("#gainers").replaceChildren(...movers.gainers.map(mover));
      $("#losers").replaceChildren(...movers.losers.map(mover));
    } catch {
      /* the connection indicator tells the story; keep the last lists */
    }
  }
}
