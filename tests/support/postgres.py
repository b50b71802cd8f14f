"""A throwaway PostgreSQL server for tests, and per-test databases on any server.

PostgreSQL refuses to run as root, so when the tests run as root the cluster is created and run as
the ``postgres`` user (``runuser -u postgres --``). Its base directory, and every directory above
it, must then be traversable by that user (e.g. ``tempfile.mkdtemp(dir="/tmp")`` chmod 0o755).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import stat
import subprocess
import threading
import uuid
from pathlib import Path
from queue import Queue
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

PG_USER = "postgres"
_START_ATTEMPTS = 3
_COMMAND_TIMEOUT_S = 120
_LOG_TAIL_LINES = 30
_VERSION_DIR = re.compile(r"^\d+(\.\d+)?$")


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be started (binaries missing, initdb or start failed)."""


def find_pg_bin() -> Path | None:
    """Directory holding ``initdb`` and ``pg_ctl``: from PATH, else the newest Debian install."""
    on_path = shutil.which("initdb")
    if on_path is not None:
        directory = Path(on_path).resolve().parent
        if _has_pg_tools(directory):
            return directory
    for directory in _debian_bin_dirs():
        if _has_pg_tools(directory):
            return directory
    return None


def _has_pg_tools(directory: Path) -> bool:
    return all(os.access(directory / tool, os.X_OK) for tool in ("initdb", "pg_ctl"))


def _debian_bin_dirs() -> list[Path]:
    root = Path("/usr/lib/postgresql")
    if not root.is_dir():
        return []
    versions = [entry for entry in root.iterdir() if _VERSION_DIR.match(entry.name)]
    versions.sort(key=lambda entry: tuple(int(part) for part in entry.name.split(".")), reverse=True)
    return [entry / "bin" for entry in versions]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_url(server_url: str, name: str) -> str:
    """``server_url`` with its database replaced by ``name``."""
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def create_database(server_url: str, name: str) -> str:
    """Create an empty database ``name`` on the server; returns its URL."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return database_url(server_url, name)


def clone_database(server_url: str, template: str, name: str) -> str:
    """Create database ``name`` as a copy of ``template`` (which nobody may be connected to)."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
        )
    return database_url(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    """Drop database ``name`` even if connections are still open."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


class ClonePool:
    """Databases cloned from ``template`` ahead of need by a background thread.

    ``CREATE DATABASE`` takes about half a second on a busy server; cloning the next database while a
    test runs hides most of that. Only this thread clones, one at a time, so the template never has
    two users (``CREATE DATABASE … TEMPLATE`` refuses a template somebody is connected to).
    """

    def __init__(self, server_url: str, template: str, ahead: int = 2) -> None:
        self._server_url = server_url
        self._template = template
        self._ready: Queue[str | BaseException] = Queue(maxsize=ahead)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._fill, name="pg-clone-pool", daemon=True)
        self._thread.start()

    def take(self) -> str:
        """The name of a fresh clone (the caller drops it)."""
        item = self._ready.get(timeout=_COMMAND_TIMEOUT_S)
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stopping.set()
        while self._thread.is_alive():
            self._drain()
            self._thread.join(0.1)
        self._drain()

    def _drain(self) -> None:
        while not self._ready.empty():
            item = self._ready.get_nowait()
            if isinstance(item, str):
                drop_database(self._server_url, item)

    def _fill(self) -> None:
        while not self._stopping.is_set():
            name = f"t_{uuid.uuid4().hex}"
            try:
                clone_database(self._server_url, self._template, name)
            except Exception as error:  # surfaced to the test that takes it
                self._ready.put(error)
                return
            self._ready.put(name)


class PostgresServer:
    """A PostgreSQL cluster on 127.0.0.1 with trust authentication, tuned for speed over safety."""

    def __init__(self, bin_dir: Path | None = None) -> None:
        self._bin_dir = bin_dir
        self._run_as_postgres = os.geteuid() == 0
        self._home: Path | None = None
        self._port: int | None = None

    @property
    def data_dir(self) -> Path:
        return self._require_home() / "data"

    @property
    def log_file(self) -> Path:
        return self._require_home() / "postgres.log"

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("PostgresServer is not running; call start() first")
        return self._port

    @property
    def url(self) -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/postgres"

    def start(self, base_dir: Path) -> None:
        """Create a cluster under ``base_dir`` and start it on a free port."""
        bin_dir = self._bin_dir or find_pg_bin()
        if bin_dir is None:
            raise PostgresUnavailable(
                "initdb/pg_ctl not found in PATH or /usr/lib/postgresql/*/bin; install PostgreSQL"
            )
        self._bin_dir = bin_dir
        self._home = self._prepare_home(base_dir)
        self._initdb()
        self._start_on_free_port()

    def stop(self) -> None:
        if self._port is None:
            return
        self._run(self._tool("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
        self._port = None

    def create_database(self, name: str) -> str:
        return create_database(self.url, name)

    def drop_database(self, name: str) -> None:
        drop_database(self.url, name)

    def _prepare_home(self, base_dir: Path) -> Path:
        base_dir.mkdir(parents=True, exist_ok=True)
        home = base_dir / "pg"
        home.mkdir(mode=0o700)
        if self._run_as_postgres:
            _require_traversable(base_dir)
            shutil.chown(home, user=PG_USER, group=PG_USER)
        return home

    def _initdb(self) -> None:
        result = self._run(
            self._tool("initdb"), "-D", str(self.data_dir), "-A", "trust", "-U", PG_USER,
            "--no-sync", "-E", "UTF8", "--locale=C",
        )  # fmt: skip
        if result.returncode != 0:
            raise PostgresUnavailable(f"initdb failed (exit {result.returncode}):\n{_tail(result.stdout)}")

    def _start_on_free_port(self) -> None:
        output = ""
        for _ in range(_START_ATTEMPTS):
            port = free_port()
            result = self._run(
                self._tool("pg_ctl"), "-D", str(self.data_dir), "-o", self._server_options(port),
                "-w", "-l", str(self.log_file), "start",
            )  # fmt: skip
            if result.returncode == 0:
                self._port = port
                return
            output = result.stdout
        log = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        raise PostgresUnavailable(
            f"pg_ctl start failed {_START_ATTEMPTS} times:\n{_tail(output)}\n--- server log ---\n{_tail(log)}"
        )

    def _server_options(self, port: int) -> str:
        return (
            f"-p {port} -k {shlex.quote(str(self.data_dir))} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )

    def _tool(self, name: str) -> str:
        assert self._bin_dir is not None
        return str(self._bin_dir / name)

    def _run(self, *command: str) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", PG_USER, "--"] if self._run_as_postgres else []
        try:
            return subprocess.run(
                [*prefix, *command],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=_COMMAND_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PostgresUnavailable(f"could not run {command[0]}: {exc}") from exc

    def _require_home(self) -> Path:
        if self._home is None:
            raise RuntimeError("PostgresServer was never started")
        return self._home


def _require_traversable(directory: Path) -> None:
    """The postgres user must reach ``directory``: every ancestor needs the others' x bit."""
    for path in [directory.resolve(), *directory.resolve().parents]:
        if not path.stat().st_mode & stat.S_IXOTH:
            raise PostgresUnavailable(
                f"{path} is not traversable by the {PG_USER} user; create the base directory under "
                "a world-traversable directory (e.g. tempfile.mkdtemp(dir='/tmp') with mode 0o755)"
            )


def _tail(text: str, lines: int = _LOG_TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
