// Cash, equity, positions and P&L: PortfolioUpdate pushes replace the snapshot, and prices from
// the market-data hub mark the positions to market in between.

import { $, el, money, price, qty, signedMoney, trend } from "./format.js";

export class Portfolio {
  constructor(api) {
    this.api = api;
    this.account = null;
    this.positions = [];
    this.prices = new Map();
  }

  symbols() {
    return this.positions.map((p) => p.symbol);
  }

  /** Forget everything (sign-out): the next user must never see this account. */
  reset() {
    this.account = null;
    this.positions = [];
    this.prices.clear();
    this.render();
    for (const id of ["#pf-equity", "#pf-cash", "#pf-bp", "#pf-pl"]) $(id).textContent = "—";
  }

  async load() {
    const [account, positions] = await Promise.all([this.api.account(), this.api.positions()]);
    this.onUpdate({ account, positions });
  }

  onUpdate(update) {
    if (update.account) this.account = update.account;
    if (Array.isArray(update.positions)) this.positions = update.positions;
    this.render();
  }

  onTick(tick) {
    if (!this.positions.some((p) => p.symbol === tick.symbol)) return;
    this.prices.set(tick.symbol, Number(tick.price));
    this.render();
  }

  /** Mark a position to the latest price seen (the server's value until a tick arrives). */
  mark(position) {
    const last = this.prices.get(position.symbol) ?? Number(position.current_price);
    const value = Number(position.qty) * last;
    const pl = value - Number(position.cost_basis);
    return { last, value, pl };
  }

  render() {
    let longValue = 0;
    let totalPl = 0;
    const rows = this.positions.map((p) => {
      const { last, value, pl } = this.mark(p);
      longValue += value;
      totalPl += pl;
      return el(
        "tr",
        { dataset: { symbol: p.symbol } },
        el("th", { scope: "row" }, p.symbol),
        el("td", { class: "num qty" }, qty(p.qty)),
        el("td", { class: "num hide-sm" }, price(p.avg_entry_price)),
        el("td", { class: "num" }, price(last)),
        el("td", { class: "num hide-sm hide-md" }, money(value)),
        el("td", { class: "num pl", dataset: { trend: trend(pl) } }, signedMoney(pl)),
      );
    });
    $("#positions tbody").replaceChildren(...rows);
    $("#positions-empty").hidden = rows.length > 0;
    if (!this.account) return;
    const cash = Number(this.account.cash);
    $("#pf-cash").textContent = money(cash);
    $("#pf-bp").textContent = money(this.account.buying_power);
    $("#pf-equity").textContent = money(this.positions.length ? cash + longValue : this.account.equity);
    const plBox = $("#pf-pl");
    plBox.textContent = signedMoney(totalPl);
    plBox.dataset.trend = trend(totalPl);
  }
}
