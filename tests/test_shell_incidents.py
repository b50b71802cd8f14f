"""`liaison shell` drives incidents: the card and its buttons, thread replies, the form and the shortcut."""

from __future__ import annotations

import io
from pathlib import Path

from bot.settings import Settings
from bot.shell import run_shell


def shell(tmp_path: Path, *lines: str) -> str:
    out = io.StringIO()
    settings = Settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'shell.db'}")  # type: ignore[call-arg]
    assert run_shell(settings, demo=False, lines=list(lines), out=out) == 0
    return out.getvalue()


def after(output: str, line: str) -> str:
    """What the console printed after the input `line` (up to the next input)."""
    return output.split(f"\n> {line}\n", 1)[1].split("\n> ", 1)[0]


def test_cards_buttons_and_threads_in_the_console(tmp_path: Path) -> None:
    output = shell(
        tmp_path,
        "/incident open sev2 Dog team missing at its post --country poland",
        ":click 1",
        ":click 3",
    )
    opened = after(output, "/incident open sev2 Dog team missing at its post --country poland")
    assert "→ Liaison posts to #CSHELL" in opened
    assert "INC-1 · sev2 · open" in opened
    assert "[1] Take ownership   [2] Escalate   [3] Resolve" in opened
    owned = after(output, ":click 1")
    assert "→ Liaison edits a message in #CSHELL" in owned
    assert "INC-1 · sev2 · owned" in owned
    assert "(in thread)" in owned
    assert "@USHELL took ownership of *INC-1*" in owned
    resolved = after(output, ":click 3")
    assert "INC-1 · sev2 · resolved" in resolved
    assert "Take ownership" not in resolved


def test_the_form_and_the_message_shortcut_in_the_console(tmp_path: Path) -> None:
    output = shell(
        tmp_path,
        "/incident",
        ":set title Flare & smoke <east gate>",
        ":set other_countries atlantis",
        ":submit",
        ":set other_countries spain",
        ":set severity sev1",
        ":submit",
        ":shortcut Bus held at the border, 40 officers aboard",
        ":submit",
        "/incident list",
    )
    form = after(output, "/incident")
    assert "→ Liaison opens a form for you:" in form
    assert "severity: Severity = 3" in form
    assert "I don't know the country 'atlantis'" in after(output, ":submit")
    sent = output.split("\n> :submit\n")[2].split("\n> ")[0]
    assert "Form sent and closed." in sent
    assert "INC-1 · sev1 · open" in sent
    assert "*Flare & smoke <east gate>*" in sent
    shortcut = after(output, ":shortcut Bus held at the border, 40 officers aboard")
    assert "title: Title = Bus held at the border, 40 officers aboard" in shortcut
    listed = after(output, "/incident list")
    assert "*INC-1* sev1" in listed
    assert "*INC-2* sev3 · Bus held at the border" in listed


def test_form_commands_without_a_form(tmp_path: Path) -> None:
    output = shell(tmp_path, ":submit")
    assert "No form is open." in after(output, ":submit")
