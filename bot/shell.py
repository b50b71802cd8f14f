"""`liaison shell`: type slash commands, read the bot's replies — through the same Bolt app and
handlers as `serve`, against the local database, with no Slack workspace and no network.

Each line is turned into a Slack-signed slash-command request — built by `bot.slack_requests`, like the
tests' requests, so `&`, `<` and `>` arrive entity-encoded as from Slack — and dispatched by the Bolt app;
messages the bot sends to channels go through the real outbox, delivered to this console.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TextIO

import httpx
from slack_bolt import App
from slack_bolt.request import BoltRequest
from slack_sdk import WebClient
from slack_sdk.web import SlackResponse

from bot.app import create_app
from bot.registry import COMMANDS
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings
from bot.slack_requests import (
    block_actions_payload,
    encode_typed_text,
    interaction_body,
    signed_headers,
    slash_command_body,
)
from bot.text_render import ShellForm, render_message
from commands.incident_modal import SHORTCUT_CALLBACK_ID

SHELL_USER = "USHELL"
SHELL_CHANNEL = "CSHELL"
SHELL_TEAM = "TSHELL"
SHELL_RESPONSE_URL = "https://shell.invalid/response"
SHELL_VERIFICATION_TOKEN = "shell"  # noqa: S105  (Slack's deprecated per-request token; unchecked)
SHELL_TOKEN = "xoxb-shell"  # noqa: S105  (not a secret: the console never reaches Slack)

HELP = """Type a slash command as in Slack, e.g. /arrivals poland 40 — or:
  :user U123      act as another Slack user id (now: {user})
  :channel C123   type in another channel (now: {channel})
  :click N        press button N of the last messages shown
  :shortcut TEXT  "Open an incident" on a message saying TEXT in this channel
  :set F VALUE    fill field F of the open form    :submit / :cancel  send or drop the form
  :form           show the open form again
  :help           this help        :quit  leave (or Ctrl-D)
Commands: {commands}"""


class ConsoleWebClient(WebClient):
    """Web API calls printed to the console and answered like Slack would (used by the outbox)."""

    def __init__(self, out: TextIO) -> None:
        super().__init__(token=SHELL_TOKEN, base_url="https://shell.invalid/api/", retry_handlers=[])
        self._out = out
        self._counter = 0
        self.buttons: list[dict[str, Any]] = []  # shared with the Shell: buttons of what was shown
        self.forms: list[ShellForm] = []  # modals opened (views.open); the last one is on screen

    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:
        payload: dict[str, Any] = dict(kwargs.get("json") or kwargs.get("params") or kwargs.get("data") or {})
        self._counter += 1
        ts = f"{time.time():.6f}"[:-2] + f"{self._counter % 100:02d}"
        target = payload.get("channel") or payload.get("user_id") or ""
        data: dict[str, Any] = {"ok": True, "channel": target, "ts": payload.get("ts") or ts}
        if api_method in ("chat.postMessage", "chat.update"):
            verb = "edits a message in" if api_method == "chat.update" else "posts to"
            thread = " (in thread)" if payload.get("thread_ts") else ""
            print(f"\n→ Liaison {verb} #{target}{thread} [ts {data['ts']}]:", file=self._out)
            print(_indent(render_message(payload, self.buttons)), file=self._out)
        elif api_method == "views.publish":
            print(f"\n→ Liaison refreshes the Home tab of @{target}", file=self._out)
        elif api_method == "views.open":
            view = dict(payload.get("view") or {})
            view["id"] = f"VSHELL{self._counter}"
            self.forms.append(ShellForm(view))
            print(f"\n→ Liaison opens a form for you:\n{_indent(self.forms[-1].render())}", file=self._out)
            data = {"ok": True, "view": view}
        elif api_method == "chat.getPermalink":
            message = str(payload.get("message_ts", "")).replace(".", "")
            data = {"ok": True, "permalink": f"https://shell.invalid/archives/{target}/p{message}"}
        elif api_method == "conversations.open":  # the DM with the bot
            data = {"ok": True, "channel": {"id": "D" + str(payload.get("users", "")).removeprefix("U")}}
        return SlackResponse(
            client=self,
            http_verb="POST",
            api_url=api_method,
            req_args={},
            data=data,
            headers={},
            status_code=200,
        )

    def files_upload_v2(self, **kwargs: Any) -> SlackResponse:
        """No file leaves the console: say what would be uploaded where."""
        content = kwargs.get("content") or b""
        size = len(content) if isinstance(content, bytes | str) else 0
        channel = kwargs.get("channel") or ""
        print(f"\n→ Liaison uploads {kwargs.get('filename')} ({size:,} bytes) to #{channel}", file=self._out)
        return SlackResponse(
            client=self,
            http_verb="POST",
            api_url="files.completeUploadExternal",
            req_args={},
            data={"ok": True, "files": [{"id": "FSHELL"}], "file": {"id": "FSHELL"}},
            headers={},
            status_code=200,
        )


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _response_url_transport(out: TextIO) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"{}")
        if body.get("delete_original"):
            return httpx.Response(200, json={"ok": True})
        print("\n→ Liaison answers you:", file=out)
        print(_indent(render_message(body)), file=out)
        return httpx.Response(200, json={"ok": True})

    return httpx.MockTransport(handle)


class Shell:
    def __init__(self, runtime: Runtime, app: App, signing_secret: str, out: TextIO) -> None:
        self.runtime = runtime
        self.app = app
        self.signing_secret = signing_secret
        self.out = out
        self.user = SHELL_USER
        self.channel = SHELL_CHANNEL
        self.buttons: list[dict[str, Any]] = []
        self.console: ConsoleWebClient | None = None

    def handle_line(self, line: str) -> bool:
        """Run one line; False when the user asked to leave."""
        line = line.strip()
        if not line:
            return True
        if line.startswith(":"):
            return self._meta(line)
        if not line.startswith("/"):
            self._say("Commands start with / — type :help for help.")
            return True
        command, _, text = line.partition(" ")
        if command not in COMMANDS:
            self._say(f"Unknown command {command}. Known: {', '.join(sorted(COMMANDS))}")
            return True
        self._dispatch_command(command, text)
        return True

    def _meta(self, line: str) -> bool:
        word, _, arg = line.partition(" ")
        arg = arg.strip()
        if word in (":quit", ":q", ":exit"):
            return False
        if word == ":user" and arg:
            self.user = arg
            self._say(f"Now acting as {arg}.")
        elif word == ":channel" and arg:
            self.channel = arg
            self._say(f"Now typing in #{arg}.")
        elif word == ":click" and arg.isdigit() and 1 <= int(arg) <= len(self.buttons):
            self._click(self.buttons[int(arg) - 1])
        elif word == ":shortcut" and arg:
            self._shortcut(arg)
        elif word in (":form", ":set", ":submit", ":cancel"):
            self._form_command(word, arg)
        else:
            self._say(HELP.format(user=self.user, channel=self.channel, commands=", ".join(sorted(COMMANDS))))
        return True

    def _dispatch_command(self, command: str, text: str) -> None:
        body = slash_command_body(
            command,
            text,
            team_id=SHELL_TEAM,
            team_domain="shell",
            channel_id=self.channel,
            channel_name=self.channel.lower(),
            user_id=self.user,
            user_name=self.user.lower(),
            api_app_id="ASHELL",
            response_url=SHELL_RESPONSE_URL,
            trigger_id=secrets.token_hex(8),
            token=SHELL_VERIFICATION_TOKEN,
        )
        response = self._dispatch(body)
        self._show_ack(response.status, response.body)

    def _click(self, element: dict[str, Any]) -> None:
        payload = block_actions_payload(
            action={
                "type": "button",
                "action_id": element.get("action_id", ""),
                "block_id": "shell",
                "value": element.get("value", ""),
                "text": element.get("text", {}),
                "action_ts": f"{time.time():.6f}",
            },
            user_id=self.user,
            user_name=self.user.lower(),
            team_id=SHELL_TEAM,
            team_domain="shell",
            channel_id=self.channel,
            channel_name=self.channel.lower(),
            api_app_id="ASHELL",
            token=SHELL_VERIFICATION_TOKEN,
            trigger_id=secrets.token_hex(8),
            response_url=SHELL_RESPONSE_URL,
            container={"type": "message", "is_ephemeral": True, "channel_id": self.channel},
        )
        self.buttons.clear()
        response = self._dispatch(interaction_body(payload))
        if response.status != 200:
            self._say(f"(the bot answered HTTP {response.status})")
        self._deliver_outbox()

    def _shortcut(self, text: str) -> None:
        """The message shortcut "Open an incident" on a message saying `text` in this channel."""
        ts = f"{time.time():.6f}"
        payload = {
            "type": "message_action",
            "callback_id": SHORTCUT_CALLBACK_ID,
            "trigger_id": secrets.token_hex(8),
            "team": {"id": SHELL_TEAM, "domain": "shell"},
            "user": {"id": self.user, "username": self.user.lower(), "team_id": SHELL_TEAM},
            "channel": {"id": self.channel, "name": self.channel.lower()},
            "message_ts": ts,
            "message": {"type": "message", "user": self.user, "ts": ts, "text": encode_typed_text(text)},
            "response_url": SHELL_RESPONSE_URL,
            "token": SHELL_VERIFICATION_TOKEN,
        }
        response = self._dispatch(interaction_body(payload))
        if response.status != 200:
            self._say(f"(the bot answered HTTP {response.status})")
        self._deliver_outbox()

    def _form_command(self, word: str, arg: str) -> None:
        form = self.console.forms[-1] if self.console is not None and self.console.forms else None
        if form is None:
            self._say("No form is open. `/incident` alone or `:shortcut TEXT` opens one.")
            return
        if word == ":form":
            self._say(form.render())
        elif word == ":cancel":
            assert self.console is not None
            self.console.forms.pop()
            self._say("Form closed; nothing was sent.")
        elif word == ":set":
            field, _, value = arg.partition(" ")
            self._say(form.set(field, value.strip()))
        else:
            self._submit(form)

    def _submit(self, form: ShellForm) -> None:
        payload = {
            "type": "view_submission",
            "team": {"id": SHELL_TEAM, "domain": "shell"},
            "user": {"id": self.user, "username": self.user.lower(), "team_id": SHELL_TEAM},
            "api_app_id": "ASHELL",
            "token": SHELL_VERIFICATION_TOKEN,
            "trigger_id": secrets.token_hex(8),
            "view": {**form.view, "state": {"values": form.state_values()}},
        }
        response = self._dispatch(interaction_body(payload))
        if response.status != 200:
            self._say(f"(the bot answered HTTP {response.status})")
            return
        answer = json.loads(response.body) if response.body else {}
        if answer.get("response_action") == "errors":
            self._say("The form is not accepted yet:")
            for field, message in answer.get("errors", {}).items():
                self._say(f"  {field}: {message}")
            return
        assert self.console is not None
        self.console.forms.remove(form)
        self._say("Form sent and closed.")
        self.buttons.clear()
        self._deliver_outbox()

    def _dispatch(self, body: str) -> Any:
        signed = signed_headers(self.signing_secret, body, int(time.time()))
        headers: dict[str, str | Sequence[str]] = {name.lower(): [value] for name, value in signed.items()}
        return self.app.dispatch(BoltRequest(body=body, headers=headers))

    def _show_ack(self, status: int, body: str) -> None:
        if status != 200:
            self._say(f"(the bot answered HTTP {status})")
            return
        self.buttons.clear()
        if body:
            message = json.loads(body)
            visibility = (
                "everyone in the channel sees"
                if message.get("response_type") == "in_channel"
                else "only you see"
            )
            print(f"\n[{visibility}]", file=self.out)
            print(render_message(message, self.buttons), file=self.out)
        self._deliver_outbox()

    def _deliver_outbox(self) -> None:
        self.runtime.outbox.drain()

    def _say(self, text: str) -> None:
        print(text, file=self.out)


def run_shell(
    settings: Settings,
    *,
    demo: bool,
    lines: Iterable[str] | None = None,
    out: TextIO = sys.stdout,
    prompt: Callable[[str], str] = input,
) -> int:
    signing_secret = secrets.token_hex(16)
    settings = settings.model_copy(
        update={"admins": [*settings.admins, SHELL_USER], "outbox_channel_interval_seconds": 0}
    )
    runtime = build_runtime(
        settings,
        token=SHELL_TOKEN,
        client=ConsoleWebClient(out),
        http=httpx.Client(transport=_response_url_transport(out)),
    )
    runtime.db.migrate()
    if demo:
        from bot.demo import DemoDataExists, load_demo_data

        try:
            with runtime.db.session() as session:
                summary = load_demo_data(session, runtime.clock.now())
            print(
                f"Loaded the demo: {summary.countries} countries, {summary.pledged:,} pledged, "
                f"{summary.arrived - summary.departed:,} on duty.",
                file=out,
            )
        except DemoDataExists:
            print("The database already holds data; the demo was not loaded again.", file=out)
    app = create_app(runtime, signing_secret=signing_secret, token=SHELL_TOKEN)
    shell = Shell(runtime, app, signing_secret, out)
    if isinstance(runtime.client, ConsoleWebClient):
        shell.console = runtime.client
        runtime.client.buttons = shell.buttons
    print(
        f"Liaison shell — {settings.database_url.split('://', 1)[0]} database, times in {settings.timezone}. "
        "Type :help for help, :quit to leave.",
        file=out,
    )
    try:
        if lines is not None:
            for line in lines:
                print(f"\n> {line.rstrip()}", file=out)
                if not shell.handle_line(line):
                    break
        else:
            while True:
                try:
                    line = prompt("\nliaison> ")
                except (EOFError, KeyboardInterrupt):
                    print(file=out)
                    break
                if not shell.handle_line(line):
                    break
    finally:
        runtime.close()
    return 0
