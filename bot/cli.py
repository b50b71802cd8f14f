"""The `liaison` command: serve, shell, demo-data, migrate, doctor."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType

from pydantic import ValidationError

from bot.runtime import Runtime
from bot.settings import ConfigurationError, Settings

log = logging.getLogger("liaison")


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # slack_sdk logs request details (headers included) at DEBUG; keep it quieter than ours.
    logging.getLogger("slack_sdk").setLevel(logging.WARNING)
    logging.getLogger("slack_bolt").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("uvicorn").setLevel(logging.WARNING)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="liaison", description="Liaison — coordinating foreign security contingents on Slack."
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve Slack over HTTP (POST /slack/events, GET /healthz)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=3000, help="port (default 3000; 0 picks a free one)")
    serve.add_argument(
        "--socket-mode",
        action="store_true",
        help="connect to Slack over Socket Mode with SLACK_APP_TOKEN (development behind a firewall)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="serving processes sharing the address (default 1; see bot/workers.py)",
    )
    serve.add_argument("--listen-fd", type=int, help=argparse.SUPPRESS)  # a worker of --workers

    shell = sub.add_parser("shell", help="a local console: type slash commands, see the replies")
    shell.add_argument("--demo", action="store_true", help="start on a realistic sample (46 countries)")

    demo = sub.add_parser("demo-data", help="load the demo sample into the database")
    demo.add_argument("--force", action="store_true", help="add the sample even if the database holds data")

    sub.add_parser("migrate", help="bring the database schema up to date")

    export = sub.add_parser(
        "export", help="write the ledgers as CSV files (movements, pledges, notices, acks, incidents)"
    )
    export.add_argument(
        "--out", required=True, help="directory to write the CSV files into (created if needed)"
    )
    export.add_argument("--country", help="only this country (name, ISO code or alias)")

    digest = sub.add_parser("digest", help="daily digests")
    digest_sub = digest.add_subparsers(dest="digest_command", required=True)
    digest_sub.add_parser(
        "send-due", help="send the digests due now (exactly once, like the in-process scheduler) and exit"
    )

    doctor = sub.add_parser("doctor", help="check that the running totals agree with the ledgers")
    doctor.add_argument("--repair", action="store_true", help="rebuild the totals from the ledgers if not")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        settings = Settings()
        if args.command == "serve" and args.workers > 1:
            return serve_workers(settings, args)
        if args.command == "serve":
            return serve(
                settings,
                host=args.host,
                port=args.port,
                socket_mode=args.socket_mode,
                listen_fd=args.listen_fd,
            )
        if args.command == "shell":
            from bot.shell import run_shell

            return run_shell(settings, demo=args.demo)
        if args.command == "demo-data":
            return demo_data(settings, force=args.force)
        if args.command == "migrate":
            return migrate(settings)
        if args.command == "export":
            return export_csv(settings, out=args.out, country=args.country)
        if args.command == "digest":
            return digest_send_due(settings)
        if args.command == "doctor":
            from bot.doctor import run_doctor

            return run_doctor(settings.database_url, repair=args.repair)
    except ValidationError as error:
        print(f"liaison: invalid configuration:\n{_describe(error)}", file=sys.stderr)
        return 2
    except ConfigurationError as error:
        print(f"liaison: {error}", file=sys.stderr)
        return 2
    return 2


def _describe(error: ValidationError) -> str:
    lines = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "settings"
        lines.append(f"  {where.upper()}: {problem['msg']}")
    return "\n".join(lines)


def migrate(settings: Settings) -> int:
    from storage.db import Database

    db = Database.from_url(settings.database_url)
    db.migrate()
    db.dispose()
    print("Database schema is up to date.")
    return 0


def export_csv(settings: Settings, *, out: str, country: str | None) -> int:
    from pathlib import Path

    from commands.countries import UnknownCountry, resolve_country
    from storage.clock import SystemClock
    from storage.db import Database
    from storage.exports import export_files

    code = None
    if country:
        try:
            code = resolve_country(country).code
        except UnknownCountry as error:
            print(f"liaison: {error}", file=sys.stderr)
            return 2
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    db = Database.from_url(settings.database_url)
    db.migrate()
    stamp = SystemClock().now().astimezone(settings.zone).strftime("%Y-%m-%d-%H%M")
    try:
        with db.read_session() as session:  # one snapshot; commands go on meanwhile
            files = export_files(session, settings.zone, code, stamp)
    finally:
        db.dispose()
    for file in files:
        (directory / file.filename).write_bytes(file.content)
        print(f"{directory / file.filename}: {file.rows} row(s)")
    return 0


def digest_send_due(settings: Settings) -> int:
    """Enqueue the digests due now; deliver the outbox too when a bot token is configured."""
    from datetime import timedelta

    from bot.digests import send_due
    from bot.runtime import build_runtime, command_config
    from storage.clock import SystemClock
    from storage.db import Database

    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
    db = Database.from_url(settings.database_url)
    db.migrate()
    clock = SystemClock()
    report = send_due(
        db, command_config(settings), clock.now(), grace=timedelta(minutes=settings.digest_grace_minutes)
    )
    for label in report.sent:
        print(f"digest sent: {label}")
    for label in report.skipped:
        print(f"digest skipped (too late): {label}")
    if not report:
        print("No digest is due.")
    if token and report.sent:
        runtime = build_runtime(settings, token=token, clock=clock, db=db)
        delivered = runtime.outbox.drain()
        print(f"Delivered {delivered} outbox message(s).")
    elif report.sent:
        print("Queued in the outbox; a running `liaison serve` delivers them.")
    db.dispose()
    return 0


def demo_data(settings: Settings, *, force: bool) -> int:
    from bot.demo import DemoDataExists, load_demo_data
    from storage.clock import SystemClock
    from storage.db import Database

    db = Database.from_url(settings.database_url)
    db.migrate()
    try:
        with db.session() as session:
            summary = load_demo_data(session, SystemClock().now(), force=force)
    except DemoDataExists as error:
        print(f"liaison: {error}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    print(
        f"Loaded the demo: {summary.countries} countries, {summary.pledged:,} pledged, "
        f"{summary.arrived:,} arrived, {summary.departed:,} departed ({summary.movements} movements)."
    )
    return 0


def serve_workers(settings: Settings, args: argparse.Namespace) -> int:
    from bot.workers import run_workers
    from storage.db import Database

    if args.socket_mode:
        raise ConfigurationError("--workers serves HTTP; Socket Mode takes one process.")
    settings.require_slack_credentials()
    db = Database.from_url(settings.database_url)
    db.migrate()  # once, before the workers start
    db.dispose()
    return run_workers(host=args.host, port=args.port, workers=args.workers, log_level=args.log_level)


def serve(
    settings: Settings, *, host: str, port: int, socket_mode: bool, listen_fd: int | None = None
) -> int:
    from bot.app import create_app
    from bot.cpu import pin_to_one_cpu
    from bot.http import HttpServer, build_wsgi, request_threads
    from bot.runtime import build_runtime
    from bot.workers import inherited_socket, ready_line

    signing_secret, token = settings.require_slack_credentials(socket_mode=socket_mode)
    if settings.pin_cpu:
        pin_to_one_cpu()  # before any thread starts: they all inherit it
    runtime = build_runtime(settings, token=token)
    runtime.db.migrate()
    app = create_app(runtime, signing_secret=signing_secret, token=token)
    ready = threading.Event()
    services = start_background_services(runtime)
    tune_garbage_collector()

    def stop(signum: int, _frame: FrameType | None) -> None:
        # Raised in the main thread once the server has stopped (uvicorn passes the signal on after its
        # graceful shutdown) or Socket Mode's wait ends; `finally` cleans up.
        log.info("signal %s: shutting down", signum)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        if socket_mode:
            return _serve_socket_mode(settings, app, ready)
        assert signing_secret is not None
        wsgi = build_wsgi(app, runtime, signing_secret=signing_secret, ready=ready.is_set)
        sock = None if listen_fd is None else inherited_socket(listen_fd)
        server = HttpServer(
            wsgi,
            host,
            port,
            request_threads(settings.http_threads, runtime.db.engine.dialect.name),
            channel_timeout=settings.http_channel_timeout_seconds,
            connection_limit=settings.http_connection_limit,
            sock=sock,
        )
        ready.set()
        if listen_fd is None:
            print(f"Liaison listening on http://{server.host}:{server.port}", flush=True)
        else:
            print(ready_line(os.getpid(), server.host, server.port), flush=True)
        log.info(
            "Slack Web API at %s; database %s",
            settings.slack_api_url,
            runtime.db.engine.url.render_as_string(),
        )
        server.run()
    finally:
        for service in reversed(services):
            service()
        runtime.close()
    return 0


# Young objects collected every GC_YOUNG_THRESHOLD allocations instead of Python's 700. A command
# allocates a few thousand short-lived objects (Bolt's request and context, SQLAlchemy's session):
# with the default, full collections walking every object of the process ran every few hundred
# commands and stalled all threads, making most of the slowest acknowledgements (bench/RESULTS.md:
# p99 at 10 clients 77 ms, 15 ms with this). Cycles are still collected, only less often.
GC_YOUNG_THRESHOLD = 50_000


def tune_garbage_collector() -> None:
    """After start-up: what is loaded by now (modules, the app, its listeners) lives as long as the
    process, so it is moved out of the collector's sight (gc.freeze), then collections are spaced."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def start_background_services(runtime: Runtime) -> list[Callable[[], None]]:
    """Start what runs beside the HTTP server; returns the functions that stop them."""
    from bot.scheduler import build_scheduler

    runtime.outbox.start()
    if not runtime.settings.scheduler:
        log.info("LIAISON_SCHEDULER=off: no reminders or digests from this process")
        return [runtime.outbox.stop]
    scheduler = build_scheduler(runtime)
    scheduler.start()
    return [runtime.outbox.stop, lambda: scheduler.shutdown(wait=False)]


def _serve_socket_mode(settings: Settings, app: object, ready: threading.Event) -> int:
    from slack_bolt import App
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    assert settings.slack_app_token is not None  # require_slack_credentials(socket_mode=True) saw it
    assert isinstance(app, App)
    handler = SocketModeHandler(app, settings.slack_app_token.get_secret_value())
    ready.set()
    print("Liaison connected over Socket Mode", flush=True)
    try:
        handler.start()  # type: ignore[no-untyped-call]  # waits until SIGTERM/SIGINT raises SystemExit
    finally:
        handler.close()  # type: ignore[no-untyped-call]
    return 0


if __name__ == "__main__":
    sys.exit(main())
