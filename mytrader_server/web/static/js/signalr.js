// The app's hub connections, on Microsoft's own SignalR browser client.
//
// `@microsoft/signalr` (pinned, vendored byte for byte with its licence under
// vendor/microsoft-signalr/, loaded by index.html before the modules; no CDN) does the protocol:
// negotiate, the WebSocket with `access_token` in the query, handshake, framing, invocations,
// keep-alive pings and the server timeout, and its automatic reconnect. This module adapts it to
// the app: one state per hub as events ("connecting", "connected", "reconnecting",
// "disconnected"), the attempt number, and three rules the client leaves to its user:
//
// - reconnect forever, with capped exponential backoff and jitter (`backoffMs`), through the
//   client's `withAutomaticReconnect` retry policy;
// - a 401 from negotiate stops the connection and reports "unauthorized": retrying cannot help;
// - the client reconnects only a connection that was once up, and gives up when the server
//   closes it without allowing a reconnect (an API restarting sends such a Close): in both cases
//   this module starts it again on the same backoff, so the app never stays offline.

const signalR = globalThis.signalR;

/** Delay before reconnect attempt `attempt` (0-based): 0, 1, 2, 4, 8, 16, 30, 30... s, +-20%. */
export function backoffMs(attempt, random = Math.random) {
  if (attempt === 0) return 0;
  const base = Math.min(30_000, 1000 * 2 ** (attempt - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}

function isUnauthorized(error) {
  return Boolean(error) && (error.statusCode === 401 || /\b401\b|Unauthorized/.test(String(error.message)));
}

export class HubConnection extends EventTarget {
  /**
   * @param {string} path hub path on this origin, e.g. "/hubs/market-data"
   * @param {{accessToken?: () => (string|null), keepAliveMs?: number, serverTimeoutMs?: number}} options
   */
  constructor(path, options = {}) {
    super();
    this.path = path;
    this.accessToken = options.accessToken || (() => null);
    this.state = "disconnected";
    this.attempt = 0;
    this.stopped = true;
    this.retry = null;
    this.connection = new signalR.HubConnectionBuilder()
      .withUrl(path, {
        accessTokenFactory: () => this.accessToken() || "",
        transport: signalR.HttpTransportType.WebSockets,
      })
      .withAutomaticReconnect({ nextRetryDelayInMilliseconds: (context) => this._nextDelay(context) })
      .configureLogging(signalR.LogLevel.Warning)
      .build();
    this.connection.keepAliveIntervalInMilliseconds = options.keepAliveMs ?? 15_000;
    this.connection.serverTimeoutInMilliseconds = options.serverTimeoutMs ?? 30_000;
    this.connection.onreconnecting((error) => {
      this.attempt = Math.max(this.attempt, 1);
      this._setState("reconnecting", { attempt: this.attempt, reason: String(error || "") });
    });
    this.connection.onreconnected(() => {
      this.attempt = 0;
      this._setState("connected");
      this.dispatchEvent(new CustomEvent("reconnected"));
    });
    this.connection.onclose((error) => this._closed(error));
  }

  /** Register a handler for a server push (case-insensitive, as the client does). */
  on(target, handler) {
    this.connection.on(target, (...args) => {
      try {
        handler(...args);
      } catch (error) {
        console.error("hub handler failed", error);
      }
    });
  }

  /** Connect (and keep reconnecting) until stop(). Resolves once the first attempt settles. */
  start() {
    this.stopped = false;
    this.attempt = 0;
    return this._start("connecting");
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retry);
    this._setState("disconnected");
    return this.connection.stop().catch(() => {});
  }

  /** Call a hub method and wait for its Completion. */
  invoke(target, ...args) {
    if (this.state !== "connected") {
      return Promise.reject(new Error(`not connected (${this.state})`));
    }
    return this.connection.invoke(target, ...args);
  }

  _setState(state, detail = {}) {
    if (this.state === state && state !== "reconnecting") return;
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, ...detail } }));
  }

  _nextDelay(context) {
    if (this.stopped || isUnauthorized(context.retryReason)) return null; // closes: see _closed
    this.attempt = context.previousRetryCount + 1;
    this._setState("reconnecting", { attempt: this.attempt, reason: String(context.retryReason || "") });
    return backoffMs(this.attempt);
  }

  async _start(state) {
    if (this.stopped) return;
    this._setState(state, { attempt: this.attempt });
    try {
      await this.connection.start();
    } catch (error) {
      if (this.stopped) return;
      if (isUnauthorized(error)) {
        this._unauthorized();
        return;
      }
      this._restartLater(String(error.message || error));
      return;
    }
    if (this.stopped) {
      this.connection.stop().catch(() => {});
      return;
    }
    const reconnected = this.attempt > 0;
    this.attempt = 0;
    this._setState("connected");
    this.dispatchEvent(new CustomEvent(reconnected ? "reconnected" : "connected"));
  }

  _closed(error) {
    if (this.stopped) return;
    if (isUnauthorized(error)) {
      this._unauthorized();
      return;
    }
    this._restartLater(String((error && error.message) || "connection closed"));
  }

  _restartLater(reason) {
    if (this.stopped) return;
    this.attempt += 1;
    const delay = backoffMs(this.attempt);
    this._setState("reconnecting", { attempt: this.attempt, reason, delay });
    clearTimeout(this.retry);
    this.retry = setTimeout(() => this._start("reconnecting"), delay);
  }

  _unauthorized() {
    this.stopped = true;
    this._setState("disconnected");
    this.dispatchEvent(new CustomEvent("unauthorized"));
  }
}
