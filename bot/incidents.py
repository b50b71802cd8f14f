"""Incidents in Slack: `/incident` (and its modal), the card's buttons, the modal's submission,
the message shortcut, and the escalation timers' job.

Reads from Slack (`views.open`, `chat.getPermalink`) happen here, outside any transaction and with
a short timeout: `views.open` must use the trigger within Slack's 3 seconds. Every message the bot
sends goes through the outbox, in the transaction of the change it reports.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.dispatch import caller_from_command, replay_guard, run_in_context
from bot.errors import unexpected_error_reply
from bot.runtime import Runtime
from bot.tokens import client_with
from commands import incident
from commands.blocks import section
from commands.common import Caller, CommandContext, Reply, UsageError, clean_text
from commands.incident_card import ACTION_ESCALATE, ACTION_OWN, ACTION_RESOLVE, parse_button_value
from commands.incident_modal import (
    BLOCK_TITLE,
    CALLBACK_ID,
    SHORTCUT_CALLBACK_ID,
    ModalContext,
    open_view,
    parse_submission,
    prefill_from_message,
)
from commands.slack_text import decode
from storage import incidents, outbox

log = logging.getLogger(__name__)

SLACK_READ_TIMEOUT_S = 2
BUTTONS = re.compile(f"^({ACTION_OWN}|{ACTION_ESCALATE}|{ACTION_RESOLVE})$")


def slack_reader(runtime: Runtime) -> WebClient:
    """The runtime's Web API client with the current bot token (it may have been rotated) and a
    timeout short enough for Slack's 3-second window; made for each use."""
    return client_with(runtime.client, token=runtime.tokens.current(), timeout=SLACK_READ_TIMEOUT_S)


def register(app: App, runtime: Runtime) -> None:

    @app.command(incident.COMMAND)
    def incident_command(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
        caller = caller_from_command(command)
        text = decode(str(command.get("text", "")))  # from Slack's encoding, once, where it enters
        if not text.strip():
            error = _open_modal(
                runtime,
                slack_reader(runtime),
                str(command.get("trigger_id", "")),
                ModalContext(caller.channel_id),
            )
            if error is None:
                ack()
            else:
                ack(**_modal_failed(error).to_message())
            return
        target = incident.escalation_target(text)
        link = card_link(runtime, slack_reader(runtime), target) if target is not None else None

        def handle(ctx: CommandContext) -> Reply:
            return incident.handle(clean_text(text, incident.COMMAND), ctx, card_link=link)

        reply = run_in_context(runtime, caller, incident.COMMAND, handle, guard=replay_guard(context))
        ack(**reply.to_message())

    @app.action(BUTTONS)
    def incident_button(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        press(runtime, slack_reader(runtime), body, action)

    @app.view(CALLBACK_ID)
    def incident_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        submit(runtime, slack_reader(runtime), ack, body, view)

    @app.shortcut(SHORTCUT_CALLBACK_ID)
    def incident_from_message(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        from_message(runtime, slack_reader(runtime), body)


# -- the modal -------------------------------------------------------------------------------------


def _open_modal(
    runtime: Runtime,
    api: WebClient,
    trigger_id: str,
    modal: ModalContext,
    *,
    title: str = "",
    description: str = "",
    author: str | None = None,
) -> str | None:
    """Open the modal; None when Slack opened it, else the reason it did not."""
    if not modal.channel:
        return "no_channel"
    with runtime.db.request_session() as session:
        choices = incidents.country_choices(session)
    view = open_view(
        modal, country_choices=choices, title=title, description=description, source_author=author
    )
    try:
        api.views_open(trigger_id=trigger_id, view=view)
    except SlackApiError as error:
        reason = str(error.response.get("error", "error")) if error.response is not None else "error"
        log.warning("views.open failed: %s", reason)
        return reason
    except (OSError, TimeoutError) as error:
        log.warning("views.open failed: %s", error)
        return "network"
    return None


def _modal_failed(reason: str) -> Reply:
    text = (
        f":warning: Slack did not open the form ({reason}). You can type the incident instead: "
        "`/incident open [sev1|sev2|sev3|sev4] <title> [--country <country>]`."
    )
    return Reply(text=text, blocks=[section(text)])


def submit(runtime: Runtime, api: WebClient, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
    modal = ModalContext.decode(str(view.get("private_metadata", "")))
    if modal is None:
        ack(
            response_action="errors",
            errors={BLOCK_TITLE: "This form is out of date: cancel it and open a new one."},
        )
        return
    parsed = parse_submission(((view.get("state") or {}).get("values")) or {})
    if isinstance(parsed, dict):
        ack(response_action="errors", errors=parsed)
        return
    source = modal.source
    if source is not None and source.permalink is None:
        source = incident.Source(source.channel, source.ts, permalink(api, source.channel, source.ts))
    user = body.get("user") or {}
    caller = Caller(
        user_id=str(user.get("id", "")),
        user_name=str(user.get("username") or user.get("name") or ""),
        channel_id=modal.channel,
        team_id=str(user.get("team_id", "")),
    )
    try:
        with runtime.db.request_session() as session:
            ctx = CommandContext(
                session=session,
                caller=caller,
                clock=runtime.clock,
                config=runtime.config,
                command=incident.COMMAND,
            )
            incident.open_incident(ctx, parsed, channel=modal.channel, source=source)
    except UsageError as error:
        ack(response_action="errors", errors={BLOCK_TITLE: error.message.replace("`", "'")})
        return
    except Exception as error:
        reply = unexpected_error_reply(error, "incident form")
        ack(response_action="errors", errors={BLOCK_TITLE: reply.text.replace("`", "").replace(":x: ", "")})
        return
    runtime.outbox.wake()
    ack()


def from_message(runtime: Runtime, api: WebClient, body: dict[str, Any]) -> None:
    """The message shortcut: the modal, prefilled from the message, remembering where it came from."""
    message = body.get("message") or {}
    channel = str((body.get("channel") or {}).get("id", ""))
    ts = str(message.get("ts") or body.get("message_ts") or "")
    title, description = prefill_from_message(str(message.get("text", "")))
    author = message.get("user")
    modal = ModalContext(channel, incident.Source(channel, ts) if ts else None)
    error = _open_modal(
        runtime,
        api,
        str(body.get("trigger_id", "")),
        modal,
        title=title,
        description=description,
        author=str(author) if author else None,
    )
    response_url = str(body.get("response_url", ""))
    if error is not None and response_url:
        with runtime.db.request_session() as session:
            outbox.respond(
                session,
                response_url,
                {**_modal_failed(error).to_message(), "replace_original": False},
                lane=f"response:incident:{body.get('user', {}).get('id', '')}",
                now=runtime.clock.now(),
            )
        runtime.outbox.wake()


# -- the card's buttons -------------------------------------------------------------------------------


def press(runtime: Runtime, api: WebClient, body: dict[str, Any], action: dict[str, Any]) -> None:
    user = body.get("user") or {}
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id", "")
    caller = Caller(
        user_id=str(user.get("id", "")),
        user_name=str(user.get("username") or user.get("name") or ""),
        channel_id=str(channel),
    )
    action_id = str(action.get("action_id", ""))
    parsed = parse_button_value(str(action.get("value", "")))
    if parsed is None:
        log.warning("incident button with a malformed value %r", action.get("value"))
        reply = UsageError("That button is not one of Liaison's incident cards.").reply()
    else:
        incident_id, version = parsed
        link = card_link(runtime, api, incident_id) if action_id == ACTION_ESCALATE else None
        reply = run_in_context(
            runtime,
            caller,
            incident.COMMAND,
            lambda ctx: incident.press(ctx, action_id, incident_id, version, link),
        )
    response_url = str(body.get("response_url", ""))
    if reply.in_channel or not response_url:
        return  # applied: the edited card and its thread say so
    with runtime.db.request_session() as session:
        outbox.respond(
            session,
            response_url,
            {**reply.to_message(), "replace_original": False},
            lane=f"response:incident:{caller.user_id}",
            now=runtime.clock.now(),
        )
    runtime.outbox.wake()


# -- permalinks ----------------------------------------------------------------------------------------


def permalink(api: WebClient, channel: str, ts: str) -> str | None:
    try:
        response = api.chat_getPermalink(channel=channel, message_ts=ts)
    except (SlackApiError, OSError, TimeoutError) as error:
        log.info("chat.getPermalink failed for %s/%s: %s", channel, ts, error)
        return None
    link = response.get("permalink")
    return str(link) if isinstance(link, str) and link.startswith("https://") else None


def card_link(runtime: Runtime, api: WebClient, incident_id: int) -> str | None:
    """The card's permalink: remembered, or asked of Slack once the card is delivered."""
    with runtime.db.request_session() as session:
        found = incidents.get(session, incident_id)
        if found is None:
            return None
        if found.card_permalink:
            return found.card_permalink
        card = outbox.get(session, found.card_message_id) if found.card_message_id else None
        if card is None or not card.slack_ts or not card.slack_channel:
            return None
        channel, ts = card.slack_channel, card.slack_ts
    link = permalink(api, channel, ts)
    if link is not None:
        with runtime.db.request_session() as session:
            incidents.set_card_permalink(session, incident_id, link)
    return link


# -- timers --------------------------------------------------------------------------------------------


def run_incident_timers(runtime: Runtime) -> int:
    """One pass over the lapsed escalation timers (the scheduler runs it every minute)."""
    now = runtime.clock.now()
    with runtime.db.session() as session:
        due = sorted({item.id for item, _ in incidents.due_timers(session, now) if item.id is not None})
    if not due:
        return 0
    api = slack_reader(runtime)
    links = {incident_id: card_link(runtime, api, incident_id) for incident_id in due}
    with runtime.db.session() as session:
        fired = incident.fire_timers(session, runtime.config, now, links)
    if fired:
        runtime.outbox.wake()
    return fired
