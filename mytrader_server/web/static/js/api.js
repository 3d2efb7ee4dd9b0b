// The REST client and the session. Only the access token is stored (sessionStorage: it dies
// with the tab); it is dropped when it expires (the API's `expiresIn`, also the JWT's `exp`)
// or as soon as the API answers 401.

const TOKEN_KEY = "mytrader.accessToken";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Seconds-since-epoch expiry from a JWT's payload, or null if it cannot be read. */
export function tokenExpiry(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(payload));
    return typeof claims.exp === "number" ? claims.exp : null;
  } catch {
    return null;
  }
}

/** The user name (the `username` or `sub` claim) for the header; display only. */
export function tokenUser(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(payload));
    return claims.username || claims.name || "";
  } catch {
    return "";
  }
}

export class Session extends EventTarget {
  constructor(storage = window.sessionStorage) {
    super();
    this.storage = storage;
    this.token = null;
    this.expiresAt = 0;
    this.timer = null;
    const saved = storage.getItem(TOKEN_KEY);
    const exp = saved ? tokenExpiry(saved) : null;
    if (saved && exp && exp * 1000 > Date.now()) this._set(saved, exp * 1000);
    else storage.removeItem(TOKEN_KEY);
  }

  get active() {
    return this.token !== null && Date.now() < this.expiresAt;
  }

  /** Keep a fresh login: `expiresIn` seconds from now (the JWT's own exp if it is earlier). */
  begin(accessToken, expiresIn) {
    let expiresAt = Date.now() + Number(expiresIn) * 1000;
    const exp = tokenExpiry(accessToken);
    if (exp) expiresAt = Math.min(expiresAt, exp * 1000);
    this.storage.setItem(TOKEN_KEY, accessToken);
    this._set(accessToken, expiresAt);
  }

  end(reason = "signed-out") {
    const had = this.token !== null;
    this.token = null;
    this.expiresAt = 0;
    clearTimeout(this.timer);
    this.storage.removeItem(TOKEN_KEY);
    if (had) this.dispatchEvent(new CustomEvent("end", { detail: { reason } }));
  }

  _set(token, expiresAt) {
    this.token = token;
    this.expiresAt = expiresAt;
    clearTimeout(this.timer);
    // setTimeout holds at most ~24.8 days; tokens live at most a day.
    this.timer = setTimeout(() => this.end("expired"), Math.max(0, expiresAt - Date.now()));
  }
}

export class Api {
  constructor(session) {
    this.session = session;
  }

  async request(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (this.session.active) headers.Authorization = `Bearer ${this.session.token}`;
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch {
      throw new ApiError(0, 0, "Cannot reach MyTrader. Check your connection.");
    }
    if (response.status === 204) return null;
    let data = null;
    const text = await response.text();
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      const message =
        data && typeof data.message === "string" ? data.message : `HTTP ${response.status}`;
      if (response.status === 401 && this.session.active) this.session.end("unauthorized");
      const retry = response.headers.get("Retry-After");
      const suffix = response.status === 429 && retry ? ` (retry in ${retry} s)` : "";
      throw new ApiError(response.status, data && data.code, message + suffix);
    }
    return data;
  }

  login(username, password) {
    return this.request("POST", "/api/auth/login", { username, password });
  }
  register(username, password) {
    return this.request("POST", "/api/auth/register", { username, password });
  }
  me() {
    return this.request("GET", "/api/auth/me");
  }
  symbols() {
    return this.request("GET", "/api/symbols");
  }
  quotes(symbols) {
    return this.request("GET", `/api/market-data/quotes?symbols=${encodeURIComponent(symbols.join(","))}`);
  }
  volumeLeaders(top = 8) {
    return this.request("GET", `/api/market-data/volume-leaders?by=volume&top=${top}`);
  }
  movers(top = 5) {
    return this.request("GET", `/api/market-data/movers?top=${top}`);
  }
  placeOrder(order) {
    return this.request("POST", "/api/orders", order);
  }
  orders(status, limit = 50) {
    return this.request("GET", `/api/orders?status=${status}&limit=${limit}`);
  }
  cancelOrder(id) {
    return this.request("DELETE", `/api/orders/${encodeURIComponent(id)}`);
  }
  account() {
    return this.request("GET", "/api/account");
  }
  positions() {
    return this.request("GET", "/api/positions");
  }
}
