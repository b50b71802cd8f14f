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
REQUIRED_SCOPES = {
    "commands",
    "chat:write",
    "chat:write.public",
    # the outbox reconciles uncertain posts (bot/reconcile.py) in public, private and DM channels
    "channels:history",
    "groups:history",
    "im:history",
    "channels:read",
    "groups:read",
    "users:read",
    "files:write",  # digest charts and CSV exports (files_upload_v2)
    "im:write",  # conversations.open: exports go to the caller's DM with Liaison
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
    assert scopes >= REQUIRED_SCOPES
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
