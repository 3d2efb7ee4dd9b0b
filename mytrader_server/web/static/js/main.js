// The app: sign-in, then the trading screen wired to the REST API and the three hubs.

import { Api, Session, tokenUser } from "./api.js";
import { $, el } from "./format.js";
import { MarketPanels, Watchlist } from "./market.js";
import { Portfolio } from "./portfolio.js";
import { HubConnection } from "./signalr.js";
import { OrderTicket, Orders } from "./trading.js";

const STATE_TEXT = {
  connected: "Live",
  connecting: "Connecting…",
  reconnecting: "Reconnecting…",
  disconnected: "Offline",
};
const STATE_RANK = { disconnected: 3, reconnecting: 2, connecting: 1, connected: 0 };

const session = new Session();
const api = new Api(session);
const watchlist = new Watchlist(api);
const panels = new MarketPanels(api);
const portfolio = new Portfolio(api);
const orders = new Orders(api);
const ticket = new OrderTicket(api, (symbol) => watchlist.quotes.get(symbol));

let hubs = null;

function toast(text) {
  const box = $("#toasts");
  const item = el("p", { class: "toast" }, text);
  box.append(item);
  setTimeout(() => item.remove(), 6000);
  while (box.children.length > 4) box.firstElementChild.remove();
}

/** One indicator for three hubs: the worst state wins. */
function showConnectionState() {
  let worst = "connected";
  let attempt = 0;
  for (const hub of Object.values(hubs || {})) {
    if (STATE_RANK[hub.state] > STATE_RANK[worst]) worst = hub.state;
    attempt = Math.max(attempt, hub.attempt);
  }
  if (!hubs) worst = "disconnected";
  const box = $("#conn-state");
  box.dataset.state = worst;
  box.querySelector(".conn-text").textContent =
    worst === "reconnecting" && attempt > 1 ? `${STATE_TEXT[worst]} (try ${attempt})` : STATE_TEXT[worst];
}

/** Symbols the market-data hub should push: the watchlist plus held positions (for P&L). */
function wantedSymbols() {
  return [...new Set([...watchlist.symbols, ...portfolio.symbols()])];
}

let subscribed = new Set();
async function resubscribe(fresh = false) {
  const hub = hubs && hubs.market;
  if (!hub || hub.state !== "connected") return;
  if (fresh) subscribed = new Set();
  const wanted = new Set(wantedSymbols());
  const add = [...wanted].filter((s) => !subscribed.has(s));
  const drop = [...subscribed].filter((s) => !wanted.has(s));
  try {
    if (add.length) await hub.invoke("SubscribeToSymbols", add);
    if (drop.length) await hub.invoke("UnsubscribeFromSymbols", drop);
    subscribed = wanted;
  } catch (error) {
    console.warn("subscription failed", error);
  }
}

function connectHubs() {
  const accessToken = () => (session.active ? session.token : null);
  hubs = {
    market: new HubConnection("/hubs/market-data", { accessToken }),
    trading: new HubConnection("/hubs/trading", { accessToken }),
    portfolio: new HubConnection("/hubs/portfolio", { accessToken }),
  };
  hubs.market.on("ReceiveMarketData", (tick) => {
    watchlist.onTick(tick);
    portfolio.onTick(tick);
    if (tick.symbol === (ticket.form.elements.symbol.value || "").trim().toUpperCase()) ticket.showQuote();
  });
  hubs.trading.on("OrderUpdate", (update) => orders.onUpdate(update));
  hubs.portfolio.on("PortfolioUpdate", (update) => {
    portfolio.onUpdate(update);
    resubscribe();
  });
  for (const hub of Object.values(hubs)) {
    hub.addEventListener("state", showConnectionState);
    hub.addEventListener("unauthorized", () => session.end("unauthorized"));
  }
  hubs.market.addEventListener("connected", () => resubscribe(true));
  hubs.market.addEventListener("reconnected", () => resubscribe(true));
  // Events may have been missed while disconnected: reload the snapshots.
  hubs.trading.addEventListener("reconnected", () => orders.load().catch(() => {}));
  hubs.portfolio.addEventListener("reconnected", () => portfolio.load().catch(() => {}));
  showConnectionState();
  for (const hub of Object.values(hubs)) hub.start();
}

function disconnectHubs() {
  if (!hubs) return;
  for (const hub of Object.values(hubs)) hub.stop();
  hubs = null;
  subscribed = new Set();
  showConnectionState();
}

async function enterApp() {
  $("#login-view").hidden = true;
  $("#app-view").hidden = false;
  $("#logout").hidden = false;
  const name = tokenUser(session.token);
  $("#user-name").textContent = name;
  $("#user-name").hidden = !name;
  document.title = "MyTrader";
  watchlist.render();
  connectHubs();
  panels.start();
  const results = await Promise.allSettled([
    api.symbols().then((assets) => watchlist.setUniverse(assets)),
    watchlist.load(),
    orders.load(),
    portfolio.load().then(() => resubscribe()),
  ]);
  for (const r of results) if (r.status === "rejected") toast(r.reason.message);
}

function leaveApp(reason) {
  disconnectHubs();
  panels.stop();
  orders.reset();
  portfolio.reset();
  for (const id of ["#ticket-ok", "#ticket-error"]) $(id).textContent = "";
  $("#app-view").hidden = true;
  $("#logout").hidden = true;
  $("#user-name").hidden = true;
  $("#login-view").hidden = false;
  document.title = "Sign in · MyTrader";
  const messages = {
    expired: "Your session expired. Please sign in again.",
    unauthorized: "Your session is no longer valid. Please sign in again.",
  };
  $("#login-error").textContent = messages[reason] || "";
  $("#username").focus();
}

async function signIn(register) {
  const form = $("#login-form");
  const username = form.elements.username.value.trim();
  const password = form.elements.password.value;
  const error = $("#login-error");
  error.textContent = "";
  if (username.length < 3 || password.length < 8) {
    error.textContent = "Enter your user name (3+ characters) and password (8+ characters).";
    return;
  }
  for (const b of form.querySelectorAll("button")) b.disabled = true;
  try {
    if (register) await api.register(username, password);
    const login = await api.login(username, password);
    session.begin(login.accessToken, login.expiresIn);
    form.elements.password.value = "";
    await enterApp();
  } catch (e) {
    error.textContent = e.message;
  } finally {
    for (const b of form.querySelectorAll("button")) b.disabled = false;
  }
}

$("#login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  signIn(false);
});
$("#register").addEventListener("click", () => signIn(true));
$("#logout").addEventListener("click", () => session.end("signed-out"));
session.addEventListener("end", (event) => leaveApp(event.detail.reason));
watchlist.addEventListener("change", () => resubscribe());
watchlist.addEventListener("pick", (event) => ticket.pick(event.detail));
ticket.addEventListener("placed", (event) => orders.apply(event.detail));
orders.addEventListener("notice", (event) => toast(event.detail));

if (session.active) enterApp();
else leaveApp("");
