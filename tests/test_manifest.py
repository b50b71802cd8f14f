"""manifest.yml declares what the bot serves: every slash command, one request URL, the scopes, the events."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

from bot.registry import COMMANDS
from commands.incident_modal import SHORTCUT_CALLBACK_ID

MANIFEST = Path(__file__).resolve().parents[1] / "manifest.yml"
EXTRA_COMMANDS = ("/liaison", "/alert", "/incident")
# Every scope asked for, and what uses it; nothing else (Enterprise Grid app reviews ask about each).
USED_SCOPES = {
    "commands": "the slash commands and the message shortcut",
    "chat:write": "every message, through the outbox",
    "chat:write.public": "posting to a public channel the bot was not invited to (the ops channel)",
    "channels:read": "conversations.info on a public channel in /liaison link",
    "groups:read": "conversations.info on a private channel in /liaison link",
    "channels:history": "the outbox looks up an uncertain post in a public channel (bot/reconcile.py)",
    "groups:history": "the same in a private channel",
    "im:history": "the same in a DM (personal digests)",
    "files:write": "digest charts and CSV exports (files_upload_v2)",
    "im:write": "conversations.open: exports go to the caller's DM with Liaison",
}


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def slash_commands(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    commands = manifest["features"]["slash_commands"]
    by_name = {entry["command"]: entry for entry in commands}
    assert len(by_name) == len(commands), "a command is declared twice"
    return by_name


def test_metadata_and_identity(manifest: dict[str, Any]) -> None:
    assert manifest["_metadata"] == {"major_version": 1, "minor_version": 1}
    info = manifest["display_information"]
    assert info["name"] == "Liaison"
    assert 0 < len(info["description"]) <= 140
    assert info["background_color"].startswith("#")
    assert len(info.get("long_description", "x" * 174)) >= 174
    assert manifest["features"]["bot_user"] == {"display_name": "liaison", "always_online": True}
    home = manifest["features"]["app_home"]
    assert home["home_tab_enabled"] is True
    assert home["messages_tab_enabled"] is True  # personal digests and exports arrive there
    assert home["messages_tab_read_only_enabled"] is False  # `/digest subscribe` is typed there


@pytest.mark.parametrize("command", sorted({*COMMANDS, *EXTRA_COMMANDS}))
def test_every_command_is_declared_and_escaped(manifest: dict[str, Any], command: str) -> None:
    entry = slash_commands(manifest).get(command)
    assert entry is not None, f"{command} is missing from manifest.yml"
    assert entry["should_escape"] is True
    assert entry["description"].strip()
    assert len(entry["usage_hint"]) <= 1000


def test_no_undeclared_extras(manifest: dict[str, Any]) -> None:
    assert set(slash_commands(manifest)) == {*COMMANDS, *EXTRA_COMMANDS}


def test_all_urls_point_to_the_same_events_endpoint(manifest: dict[str, Any]) -> None:
    settings = manifest["settings"]
    urls = [entry["url"] for entry in manifest["features"]["slash_commands"]]
    urls.append(settings["event_subscriptions"]["request_url"])
    urls.append(settings["interactivity"]["request_url"])
    assert len(set(urls)) == 1
    url = urlparse(urls[0])
    assert url.scheme == "https"
    assert url.path == "/slack/events"


def test_scopes_events_and_settings(manifest: dict[str, Any]) -> None:
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert scopes >= set(USED_SCOPES)
    assert scopes <= set(USED_SCOPES), "a scope nothing uses"
    settings = manifest["settings"]
    assert "app_home_opened" in settings["event_subscriptions"]["bot_events"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["org_deploy_enabled"] is False
    assert settings["socket_mode_enabled"] is False
    assert settings["token_rotation_enabled"] is False


def test_header_explains_host_and_socket_mode() -> None:
    header = MANIFEST.read_text(encoding="utf-8").split("_metadata:")[0]
    for needle in (
        "liaison.example.org",
        "socket_mode_enabled: true",
        "connections:write",
        "SLACK_APP_TOKEN",
    ):
        assert needle in header


def test_the_incident_message_shortcut_is_declared(manifest: dict[str, Any]) -> None:
    shortcuts = manifest["features"]["shortcuts"]
    [shortcut] = [entry for entry in shortcuts if entry["callback_id"] == SHORTCUT_CALLBACK_ID]
    assert shortcut["type"] == "message"
    assert shortcut["name"] == "Open an incident"
    assert 0 < len(shortcut["name"]) <= 24
    assert 0 < len(shortcut["description"]) <= 150
    assert "from this message" in shortcut["description"]
    # Shortcuts and slash commands need `commands`; the card, its edits and thread replies need
    # `chat:write`, the escalation and liaison channels `chat:write.public` where Liaison is not a member.
    assert {"commands", "chat:write", "chat:write.public"} <= set(manifest["oauth_config"]["scopes"]["bot"])
    assert manifest["settings"]["interactivity"]["is_enabled"] is True


def test_header_explains_who_needs_the_signing_secret_and_foreign_officers() -> None:
    header = MANIFEST.read_text(encoding="utf-8").split("_metadata:")[0]
    assert "over HTTP also SLACK_SIGNING_SECRET" in header
    assert "Start `liaison serve` before creating the app" in header
    assert "Slack Connect" in header


def test_scopes_are_the_ones_the_code_calls() -> None:
    """conversations.info is the only read; users.* is never called (no users:read)."""
    root = MANIFEST.parent
    sources = "\n".join(
        p.read_text(encoding="utf-8")
        for d in ("bot", "commands", "storage")
        for p in (root / d).rglob("*.py")
    )
    assert "conversations_info" in sources
    assert "users_info" not in sources
    assert "users.info" not in sources


def test_readme_orders_the_slack_set_up_so_slack_can_verify_the_url() -> None:
    readme = (MANIFEST.parent / "README.md").read_text(encoding="utf-8")
    setup = readme.split("## Connecting a real Slack workspace", 1)[1]
    assert setup.index("liaison serve --host") < setup.index("Slack verifies the events URL\n   against")
    for needle in ("Slack Connect", "multi-channel guest", "/invite @liaison", "reverse proxy"):
        assert needle in readme
