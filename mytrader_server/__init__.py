"""MyTrader: a lean paper-trading API with SignalR-compatible real-time hubs.

Error tree (one root, see ``errors``)::

    TradingError(code, status_code, message)   -> JSON {"code", "message"} with status_code
    SettingsError                              -> start-up refused with a clear message
"""

__version__ = "0.1.0"
