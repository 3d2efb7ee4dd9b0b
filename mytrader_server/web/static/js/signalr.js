// A small ASP.NET Core SignalR client: JSON hub protocol over a WebSocket, nothing else.
//
// Why not @microsoft/signalr: the app has no build step and needs only WebSockets + JSON, which
// is ~250 lines; the wire format follows docs section 1 (negotiate v1, handshake, 0x1E framing,
// Invocation/Completion/Ping/Close) and the server speaks to the official client the same way.
//
// Browsers cannot set headers on a WebSocket, so the token travels as `access_token` in the query
// (as the official browser client does); negotiate sends it as a Bearer header.
//
// States: "disconnected" -> "connecting" -> "connected" -> ("reconnecting" -> "connected")*.
// Any unexpected loss (socket closed, Close message, no message within serverTimeoutMs) goes to
// "reconnecting" and retries forever with capped exponential backoff and jitter. A 401 from
// negotiate stops the connection and reports "unauthorized": retrying cannot help.

const RS = "\x1e";
const MSG = { INVOCATION: 1, STREAM_ITEM: 2, COMPLETION: 3, PING: 6, CLOSE: 7 };

export class UnauthorizedError extends Error {}

/** Delay before reconnect attempt `attempt` (0-based): 0, 1, 2, 4, 8, 16, 30, 30... s, +-20%. */
export function backoffMs(attempt, random = Math.random) {
  if (attempt === 0) return 0;
  const base = Math.min(30_000, 1000 * 2 ** (attempt - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}

export class HubConnection extends EventTarget {
  /**
   * @param {string} path hub path on this origin, e.g. "/hubs/market-data"
   * @param {{accessToken?: () => (string|null), keepAliveMs?: number, serverTimeoutMs?: number,
   *          handshakeTimeoutMs?: number}} options
   */
  constructor(path, options = {}) {
    super();
    this.path = path;
    this.accessToken = options.accessToken || (() => null);
    this.keepAliveMs = options.keepAliveMs ?? 15_000;
    this.serverTimeoutMs = options.serverTimeoutMs ?? 30_000;
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? 15_000;
    this.state = "disconnected";
    this.attempt = 0;
    this.handlers = new Map();
    this.pending = new Map();
    this.nextId = 0;
    this.socket = null;
    this.buffer = "";
    this.stopped = true;
    this.timers = { retry: null, ping: null, timeout: null };
  }

  /** Register a handler for a server push (case-insensitive, like the official client). */
  on(target, handler) {
    const key = target.toLowerCase();
    if (!this.handlers.has(key)) this.handlers.set(key, []);
    this.handlers.get(key).push(handler);
  }

  /** Connect (and keep reconnecting) until stop(). Resolves once the first attempt settles. */
  start() {
    this.stopped = false;
    this.attempt = 0;
    return this._connect("connecting");
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timers.retry);
    this._teardown();
    if (this.socket && this.socket.readyState <= WebSocket.OPEN) {
      try {
        this.socket.send(JSON.stringify({ type: MSG.CLOSE }) + RS);
      } catch {
        /* closing anyway */
      }
      this.socket.close(1000);
    }
    this.socket = null;
    this._setState("disconnected");
  }

  /** Call a hub method and wait for its Completion. */
  invoke(target, ...args) {
    if (this.state !== "connected") {
      return Promise.reject(new Error(`not connected (${this.state})`));
    }
    const invocationId = String(this.nextId++);
    return new Promise((resolve, reject) => {
      this.pending.set(invocationId, { resolve, reject });
      this._send({ type: MSG.INVOCATION, invocationId, target, arguments: args });
    });
  }

  _setState(state, detail = {}) {
    if (this.state === state) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, ...detail } }));
  }

  async _connect(state) {
    if (this.stopped) return;
    this._setState(state, { attempt: this.attempt });
    try {
      const id = await this._negotiate();
      if (this.stopped) return;
      await this._open(id);
      const reconnected = this.attempt > 0;
      this.attempt = 0;
      this._setState("connected");
      this.dispatchEvent(new CustomEvent(reconnected ? "reconnected" : "connected"));
    } catch (error) {
      if (this.stopped) return;
      if (error instanceof UnauthorizedError) {
        this.stopped = true;
        this._setState("disconnected");
        this.dispatchEvent(new CustomEvent("unauthorized"));
        return;
      }
      this._scheduleReconnect(String(error.message || error));
    }
  }

  _scheduleReconnect(reason) {
    if (this.stopped) return;
    this._teardown();
    this.attempt += 1;
    const delay = backoffMs(this.attempt);
    this._setState("reconnecting", { attempt: this.attempt, reason, delay });
    clearTimeout(this.timers.retry);
    this.timers.retry = setTimeout(() => this._connect("reconnecting"), delay);
  }

  async _negotiate() {
    const token = this.accessToken();
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    let response;
    try {
      response = await fetch(`${this.path}/negotiate?negotiateVersion=1`, {
        method: "POST",
        headers,
        cache: "no-store",
      });
    } catch {
      throw new Error("network error");
    }
    if (response.status === 401) throw new UnauthorizedError("unauthorized");
    if (!response.ok) throw new Error(`negotiate answered ${response.status}`);
    const body = await response.json();
    if (body.error) throw new Error(body.error);
    return body.connectionToken || body.connectionId;
  }

  _open(id) {
    return new Promise((resolve, reject) => {
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      const query = new URLSearchParams({ id });
      const token = this.accessToken();
      if (token) query.set("access_token", token);
      const socket = new WebSocket(`${scheme}://${location.host}${this.path}?${query}`);
      this.socket = socket;
      this.buffer = "";
      let handshaken = false;
      const handshakeTimer = setTimeout(() => {
        socket.close(4000, "handshake timeout");
        reject(new Error("handshake timeout"));
      }, this.handshakeTimeoutMs);

      socket.onopen = () => {
        socket.send(JSON.stringify({ protocol: "json", version: 1 }) + RS);
      };
      socket.onmessage = (event) => {
        if (typeof event.data !== "string") return;
        this.buffer += event.data;
        let cut;
        while ((cut = this.buffer.indexOf(RS)) >= 0) {
          const record = this.buffer.slice(0, cut);
          this.buffer = this.buffer.slice(cut + 1);
          let message;
          try {
            message = JSON.parse(record);
          } catch {
            socket.close(4001, "bad message");
            return;
          }
          if (!handshaken) {
            clearTimeout(handshakeTimer);
            if (message.error || message.type !== undefined) {
              reject(new Error(message.error || "bad handshake reply"));
              socket.close(1000);
              return;
            }
            handshaken = true;
            this._armTimers();
            resolve();
            continue;
          }
          this._armServerTimeout();
          this._dispatch(message);
        }
      };
      socket.onclose = (event) => {
        clearTimeout(handshakeTimer);
        if (this.socket !== socket) return;
        this.socket = null;
        if (!handshaken) {
          reject(new Error(`closed before handshake (${event.code})`));
          return;
        }
        this._failPending("connection lost");
        this._scheduleReconnect(`closed (${event.code})`);
      };
    });
  }

  _dispatch(message) {
    switch (message.type) {
      case MSG.INVOCATION: {
        for (const handler of this.handlers.get(String(message.target).toLowerCase()) || []) {
          try {
            handler(...(message.arguments || []));
          } catch (error) {
            console.error("hub handler failed", error);
          }
        }
        break;
      }
      case MSG.COMPLETION: {
        const call = this.pending.get(message.invocationId);
        if (!call) break;
        this.pending.delete(message.invocationId);
        if (message.error) call.reject(new Error(message.error));
        else call.resolve(message.result);
        break;
      }
      case MSG.CLOSE: {
        const socket = this.socket;
        this.socket = null;
        this._failPending(message.error || "server closed the connection");
        if (socket) socket.close(1000);
        this._scheduleReconnect(message.error || "server closed the connection");
        break;
      }
      default: // Ping and anything newer: the receive itself reset the server timeout.
        break;
    }
  }

  _send(message) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return;
    this.socket.send(JSON.stringify(message) + RS);
    this._armKeepAlive();
  }

  _armTimers() {
    this._armKeepAlive();
    this._armServerTimeout();
  }

  _armKeepAlive() {
    clearTimeout(this.timers.ping);
    this.timers.ping = setTimeout(() => this._send({ type: MSG.PING }), this.keepAliveMs);
  }

  _armServerTimeout() {
    clearTimeout(this.timers.timeout);
    this.timers.timeout = setTimeout(() => {
      const socket = this.socket;
      this.socket = null;
      if (socket) socket.close(4002, "server timeout");
      this._failPending("server timeout");
      this._scheduleReconnect("Server timeout elapsed without receiving a message from the server.");
    }, this.serverTimeoutMs);
  }

  _teardown() {
    clearTimeout(this.timers.ping);
    clearTimeout(this.timers.timeout);
    this._failPending("connection closed");
  }

  _failPending(reason) {
    for (const call of this.pending.values()) call.reject(new Error(reason));
    this.pending.clear();
  }
}
