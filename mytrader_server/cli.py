"""``mytrader-server``: serve the API (the default), manage users, serve the web app."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from mytrader_server.errors import SettingsError, TradingError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=False,
    help="The MyTrader trading API. Settings come from MYTRADER_* environment variables.",
)
users_app = typer.Typer(add_completion=False, help="Manage accounts (for synthetic monitoring).")
app.add_typer(users_app, name="users")

HostOpt = Annotated[str | None, typer.Option(help="Interface to bind [default: 127.0.0.1].")]
PortOpt = Annotated[
    int | None, typer.Option(help="Port to bind; 0 picks a free one [default: 5002].")
]
ReadyOpt = Annotated[
    Path | None,
    typer.Option(help="Write the base URL here once listening (for scripts and tests)."),
]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"mytrader-server: {message}", err=True)
    return typer.Exit(2)


def _run_server(
    host: str | None, port: int | None, ready_file: Path | None, access_log: bool
) -> None:
    from mytrader_server.server import serve
    from mytrader_server.settings import load_settings

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    try:
        settings = load_settings(**overrides)
        if not settings.migrate_on_start:
            asyncio.run(_require_head(settings))
    except SettingsError as exc:
        raise _fail(str(exc)) from None
    except (OSError, SQLAlchemyError) as exc:
        typer.echo(f"mytrader-server: cannot reach the database: {_db_reason(exc)}", err=True)
        raise typer.Exit(1) from None
    serve(settings, ready_file=ready_file, access_log=access_log)


async def _require_head(settings: object) -> None:
    from mytrader_server.db.engine import create_engine
    from mytrader_server.db.migrate import require_head
    from mytrader_server.settings import Settings

    assert isinstance(settings, Settings)
    engine = create_engine(settings)
    try:
        await require_head(engine)
    finally:
        await engine.dispose()


@app.callback(invoke_without_command=True)
def main_callback(
    ctx: typer.Context,
    host: HostOpt = None,
    port: PortOpt = None,
    ready_file: ReadyOpt = None,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = False,
) -> None:
    """Without a command: serve the API."""
    if ctx.invoked_subcommand is None:
        _run_server(host, port, ready_file, access_log)


@app.command()
def serve(
    host: HostOpt = None,
    port: PortOpt = None,
    ready_file: ReadyOpt = None,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = False,
) -> None:
    """Serve the API."""
    _run_server(host, port, ready_file, access_log)


@app.command()
def migrate() -> None:
    """Bring the database schema to this version's head, then exit.

    Safe to run from several places at once (a database-wide lock serialises it). Use it as a
    release step with MYTRADER_MIGRATE_ON_START=false on the servers.
    """
    from mytrader_server.settings import load_settings

    try:
        settings = load_settings()
        before, after = asyncio.run(_migrate(settings))
    except SettingsError as exc:
        raise _fail(str(exc)) from None
    except (OSError, SQLAlchemyError) as exc:
        typer.echo(f"mytrader-server: cannot migrate the database: {_db_reason(exc)}", err=True)
        raise typer.Exit(1) from None
    if before == after:
        typer.echo(f"database schema already at {after}")
    else:
        typer.echo(f"database schema upgraded from {before or 'empty'} to {after}")


async def _migrate(settings: object) -> tuple[str | None, str]:
    from mytrader_server.db.engine import create_engine
    from mytrader_server.db.migrate import upgrade_to_head
    from mytrader_server.settings import Settings

    assert isinstance(settings, Settings)
    engine = create_engine(settings)
    try:
        return await upgrade_to_head(engine)
    finally:
        await engine.dispose()


def _db_reason(exc: BaseException) -> str:
    """One line naming the failure, never the URL (it may hold a password)."""
    orig = getattr(exc, "orig", None) or exc
    return (
        f"{type(orig).__name__}: {str(orig).splitlines()[0][:200]}"
        if str(orig)
        else (type(orig).__name__)
    )


@app.command()
def web(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind; 0 picks a free one.")] = 3000,
    backend: Annotated[
        str, typer.Option(help="The API's base URL; /api and /hubs are proxied there.")
    ] = "http://127.0.0.1:5002",
    backend_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the API's answer before a 504.")
    ] = 30.0,
    ready_file: ReadyOpt = None,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = False,
) -> None:
    """Serve the web app and proxy /api and /hubs (WebSockets included) to the API."""
    from mytrader_server.web.proxy import ProxyConfig
    from mytrader_server.web.server import serve_web

    if not 0 <= port <= 65535:
        raise _fail(f"--port must be 0-65535, got {port}")
    try:
        proxy = ProxyConfig(backend=backend, read_timeout_s=backend_timeout)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    serve_web(proxy, host, port, ready_file, access_log)


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="The new account's user name.")],
    admin: Annotated[bool, typer.Option("--admin", help="May switch fault injection.")] = False,
) -> None:
    """Create an account; the password is read from standard input (never an argument)."""
    from mytrader_server.settings import load_settings

    password = sys.stdin.readline().rstrip("\r\n")
    try:
        settings = load_settings()
        user_id = asyncio.run(_add_user(settings, username, password, admin))
    except SettingsError as exc:
        raise _fail(str(exc)) from None
    except TradingError as exc:
        raise _fail(exc.message) from None
    typer.echo(user_id)


async def _add_user(settings: object, username: str, password: str, admin: bool) -> str:
    from pydantic import ValidationError

    from mytrader_server.auth.passwords import PasswordService
    from mytrader_server.db.engine import create_engine, create_sessionmaker
    from mytrader_server.db.migrate import upgrade_to_head
    from mytrader_server.settings import Settings
    from mytrader_server.trading.schemas import Credentials
    from mytrader_server.trading.users import create_user

    assert isinstance(settings, Settings)
    try:
        creds = Credentials(username=username, password=password)
    except ValidationError as exc:
        field = ", ".join(str(e["loc"][0]) for e in exc.errors())
        raise TradingError(
            422,
            f"invalid {field} (user names: 3-64 of A-Z a-z 0-9 _ . @ -; "
            "passwords: at least 8 characters)",
        ) from None
    engine = create_engine(settings)
    try:
        await upgrade_to_head(engine)
        passwords = PasswordService(settings.password_max_bytes, 1)
        password_hash = await passwords.hash(creds.password)
        user = await create_user(
            create_sessionmaker(engine),
            creds.username,
            password_hash,
            settings.starting_cash,
            admin,
        )
        return user.id
    finally:
        await engine.dispose()


def main() -> None:
    app()
