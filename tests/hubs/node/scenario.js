// Drives one MyTrader hub with @microsoft/signalr (the reference client) and prints one JSON
// object with what happened. Usage: node scenario.js '<json options>'
//   {"base": "http://127.0.0.1:PORT", "scenario": "market"|"trading"|"shutdown",
//    "token": "...", "auth": "header"|"query"|"none", "skipNegotiation": bool}
"use strict";
const signalR = require("@microsoft/signalr");

const opts = JSON.parse(process.argv[2]);
const out = { events: [] };
const log = (e) => out.events.push(e);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function build(hub) {
  let url = `${opts.base}/hubs/${hub}`;
  const options = { transport: signalR.HttpTransportType.WebSockets };
  if (opts.skipNegotiation) options.skipNegotiation = true;
  if (opts.auth === "header") options.accessTokenFactory = () => opts.token;
  if (opts.auth === "query") url += `?access_token=${encodeURIComponent(opts.token)}`;
  const conn = new signalR.HubConnectionBuilder()
    .withUrl(url, options)
    .configureLogging(signalR.LogLevel.Warning)
    .build();
  conn.serverTimeoutInMilliseconds = opts.serverTimeoutMs || 30000;
  conn.onclose((err) => log({ closed: err ? String(err.message || err) : null }));
  return conn;
}

function until(pred, ms) {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const poll = () => {
      if (pred()) return resolve();
      if (Date.now() - start > ms) return reject(new Error("timed out"));
      setTimeout(poll, 20);
    };
    poll();
  });
}

async function market() {
  const conn = build("market-data");
  const pushes = [];
  conn.on("receivemarketdata", (tick) => pushes.push(tick)); // the client lowercases names
  await conn.start();
  out.connectionId = conn.connectionId;
  out.subscribed = await conn.invoke("SubscribeToSymbols", ["AAPL", "MSFT"]);
  await until(() => pushes.length >= 3, 10000);
  out.push = pushes[pushes.length - 1];
  try {
    await conn.invoke("SubscribeToSymbols", ["NOPE"]);
    out.error = null;
  } catch (e) {
    out.error = e.message;
  }
  try {
    await conn.invoke("NoSuchMethod");
  } catch (e) {
    out.unknown = e.message;
  }
  out.unsubscribed = await conn.invoke("unsubscribefromsymbols", ["AAPL", "MSFT"]);
  // stream with completion
  out.streamItems = await new Promise((resolve, reject) => {
    const items = [];
    conn.stream("StreamPrices", "MSFT", 3).subscribe({
      next: (i) => items.push(i),
      complete: () => resolve(items),
      error: reject,
    });
  });
  // stream cancelled by dispose(): the client sends CancelInvocation
  const cancelled = [];
  const sub = conn.stream("StreamPrices", "AAPL").subscribe({
    next: (i) => cancelled.push(i),
    complete: () => log("unexpected-complete"),
    error: (e) => log({ streamError: String(e) }),
  });
  await until(() => cancelled.length >= 2, 10000);
  sub.dispose();
  const atCancel = cancelled.length;
  await sleep(500);
  out.cancelledAfter = cancelled.length - atCancel;
  // stream error
  out.streamError = await new Promise((resolve) => {
    conn.stream("StreamPrices", "NOPE").subscribe({
      next: () => resolve("item?"),
      complete: () => resolve("complete?"),
      error: (e) => resolve(e.message),
    });
  });
  // keep-alive: idle longer than the client's server timeout; only server pings keep it open
  await sleep(opts.idleMs || 0);
  out.stateAfterIdle = conn.state;
  await conn.stop();
  out.stateAfterStop = conn.state;
}

async function trading() {
  const conn = build("trading");
  const portfolio = build("portfolio");
  const updates = [];
  const portfolios = [];
  conn.on("OrderUpdate", (u) => updates.push(u));
  portfolio.on("PortfolioUpdate", (p) => portfolios.push(p));
  await conn.start();
  await portfolio.start();
  out.openOrders = await conn.invoke("GetOpenOrders");
  const resp = await fetch(`${opts.base}/api/orders`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${opts.token}` },
    body: JSON.stringify({ symbol: "AAPL", qty: "1", side: "buy", type: "market" }),
  });
  out.orderStatus = resp.status;
  const order = await resp.json();
  await until(() => updates.length >= 2 && portfolios.length >= 1, 10000);
  out.updates = updates.map((u) => ({ event: u.event, id: u.order.id }));
  out.orderId = order.id;
  out.portfolioKeys = Object.keys(portfolios[0]).sort();
  out.portfolio = await portfolio.invoke("GetPortfolio");
  await conn.stop();
  await portfolio.stop();
}

async function shutdown() {
  // connect, report readiness, then wait for the server to go away (the test sends SIGTERM)
  const conn = build("market-data");
  await conn.start();
  process.stdout.write("READY\n");
  await until(() => conn.state === signalR.HubConnectionState.Disconnected, 30000);
}

async function denied() {
  const conn = build(opts.hub);
  try {
    await conn.start();
    out.started = true;
    await conn.stop();
  } catch (e) {
    out.error = e.message;
    out.statusCode = e.statusCode ?? null;
  }
}

const scenarios = { market, trading, shutdown, denied };
scenarios[opts.scenario]()
  .then(() => {
    process.stdout.write(JSON.stringify(out) + "\n");
    process.exit(0);
  })
  .catch((e) => {
    out.failure = String(e && e.stack ? e.stack : e);
    process.stdout.write(JSON.stringify(out) + "\n");
    process.exit(1);
  });
