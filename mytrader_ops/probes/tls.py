"""`kind: tls`: the facts of a deployment's TLS, each reported with its value.

The chain must verify for the host (with the environment's `ca_file`, never with verification
off), the certificate must not expire within `min_days`, and the protocol must be TLS 1.2 or
newer. A plain-HTTP target has no TLS to judge: that is a failure of a check that demands it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import time
from urllib.parse import urlsplit

from mytrader_ops.config import TlsCheck
from mytrader_ops.observation import Observation, StepLog
from mytrader_ops.probes.context import ProbeContext, run_probe

_OLD = {"SSLv2", "SSLv3", "TLSv1", "TLSv1.1"}


def days_left(not_after: str, now: float) -> float:
    """Days from `now` (UNIX seconds) to a certificate's notAfter ("Jun  1 12:00:00 2027 GMT")."""
    return (ssl.cert_time_to_seconds(not_after) - now) / 86400


async def probe_tls(ctx: ProbeContext, check: TlsCheck) -> Observation:
    async def body(log: StepLog) -> str | None:
        url = check.url or ctx.backend
        parts = urlsplit(url)
        if parts.scheme != "https" or parts.hostname is None:
            log.fail("tls", f"{url} is not an https URL: no TLS to judge")
            return None
        host, port = parts.hostname, parts.port or 443
        # verification always on; the environment's CA file is honoured
        context = ssl.create_default_context(cafile=ctx.ca_file)
        t0 = time.perf_counter()
        try:
            _reader, writer = await asyncio.open_connection(
                host, port, ssl=context, server_hostname=host
            )
        except ssl.SSLCertVerificationError as exc:
            log.fail("chain", f"does not verify for {host}: {exc.verify_message}")
            return None
        except (OSError, ssl.SSLError) as exc:
            log.fail("handshake", f"{type(exc).__name__}: {exc}")
            return None
        try:
            ssl_object = writer.get_extra_info("ssl_object")
            cert = ssl_object.getpeercert() if ssl_object is not None else None
            version = ssl_object.version() if ssl_object is not None else None
        finally:
            writer.close()
        log.ok("chain", f"verifies for {host}", (time.perf_counter() - t0) * 1000)
        if version is None or version in _OLD:
            log.fail("protocol", f"{version or 'unknown'}, TLS 1.2 or newer required")
        else:
            log.ok("protocol", version)
        not_after = cert.get("notAfter") if isinstance(cert, dict) else None
        if not isinstance(not_after, str):
            log.unknown("expiry", "the certificate has no notAfter")
            return None
        left = days_left(not_after, time.time())
        log.values["days_to_expiry"] = round(left, 1)
        when = dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), dt.UTC)
        log.ok("expiry", f"{when:%Y-%m-%d} ({left:.1f} days)")
        return None

    return await run_probe(check.id, check.kind, check.timeout_s, body, redactor=ctx.redactor)
