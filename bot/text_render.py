"""Block Kit rendered as terminal text, for `liaison shell`."""

from __future__ import annotations

import html
import re
from typing import Any

_USER = re.compile(r"<@([A-Z0-9]+)(?:\|([^>]+))?>")
_CHANNEL = re.compile(r"<#([A-Z0-9]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!(channel|here|everyone)>")
_LINK = re.compile(r"<(https?://[^|>]+)(?:\|([^>]+))?>")


def mrkdwn_to_text(text: str) -> str:
    text = _USER.sub(lambda m: "@" + (m.group(2) or m.group(1)), text)
    text = _CHANNEL.sub(lambda m: "#" + (m.group(2) or m.group(1)), text)
    text = _SPECIAL.sub(lambda m: "@" + m.group(1), text)
    text = _LINK.sub(lambda m: m.group(2) or m.group(1), text)
    text = text.replace("```", "")
    return html.unescape(text)


def _text_of(obj: Any) -> str:
    if isinstance(obj, dict):
        return mrkdwn_to_text(str(obj.get("text", "")))
    return ""


def render_blocks(blocks: list[dict[str, Any]], buttons: list[dict[str, Any]] | None = None) -> str:
    """Readable text for a message; buttons are numbered and appended to `buttons` for `:click N`."""
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            title = _text_of(block.get("text"))
            lines += [title, "=" * min(len(title), 60)]
        elif kind == "section":
            if block.get("text"):
                lines.append(_text_of(block["text"]))
            fields = [_text_of(f).replace("\n", ": ") for f in block.get("fields", [])]
            if fields:
                lines.append("   ".join(fields))
        elif kind == "context":
            lines.append("  " + " · ".join(_text_of(e) for e in block.get("elements", [])))
        elif kind == "divider":
            lines.append("-" * 40)
        elif kind == "actions":
            labels = []
            for element in block.get("elements", []):
                if buttons is not None:
                    buttons.append(element)
                    labels.append(f"[{len(buttons)}] {_text_of(element.get('text'))}")
                else:
                    labels.append(f"[{_text_of(element.get('text'))}]")
            lines.append("   ".join(labels) + ("   (type :click N)" if buttons is not None else ""))
    return "\n".join(lines)


def render_message(message: dict[str, Any], buttons: list[dict[str, Any]] | None = None) -> str:
    blocks = message.get("blocks")
    if isinstance(blocks, list) and blocks:
        return render_blocks(blocks, buttons)
    return mrkdwn_to_text(str(message.get("text", "")))


class ShellForm:
    """A modal shown in the console: its input fields, filled with `:set`, sent with `:submit`."""

    def __init__(self, view: dict[str, Any]) -> None:
        self.view = view
        self.values: dict[str, Any] = {}
        for block in self._inputs():
            element = block.get("element", {})
            if "initial_value" in element:
                self.values[block["block_id"]] = element["initial_value"]
            elif "initial_option" in element:
                self.values[block["block_id"]] = element["initial_option"]
            elif "initial_options" in element:
                self.values[block["block_id"]] = list(element["initial_options"])

    def _inputs(self) -> list[dict[str, Any]]:
        return [b for b in self.view.get("blocks", []) if b.get("type") == "input" and b.get("block_id")]

    def render(self) -> str:
        title = _text_of(self.view.get("title"))
        lines = [title, "=" * min(len(title), 60)]
        for block in self.view.get("blocks", []):
            if block.get("type") != "input":
                lines.append(render_blocks([block]))
                continue
            element = block.get("element", {})
            optional = " (optional)" if block.get("optional") else ""
            lines.append(
                f"{block['block_id']}: {_text_of(block.get('label'))}{optional} = {self._shown(block)}"
            )
            options = element.get("options") or []
            if options:
                choices = ", ".join(f"{o['value']} ({_text_of(o.get('text'))})" for o in options[:60])
                lines.append(f"    choices: {choices}" + (" …" if len(options) > 60 else ""))
        lines.append("Fill with `:set <field> <value>` (several choices: comma-separated), then `:submit`.")
        return "\n".join(lines)

    def _shown(self, block: dict[str, Any]) -> str:
        value = self.values.get(block["block_id"])
        if value is None:
            return "—"
        if isinstance(value, dict):
            return str(value.get("value", ""))
        if isinstance(value, list):
            return ", ".join(str(o.get("value", "")) for o in value) or "—"
        return str(value)

    def set(self, field: str, value: str) -> str:
        block = next((b for b in self._inputs() if b["block_id"] == field), None)
        if block is None:
            fields = ", ".join(b["block_id"] for b in self._inputs())
            return f"This form has no field {field!r}; its fields: {fields}."
        element = block.get("element", {})
        kind = element.get("type")
        options = element.get("options") or []
        if kind == "static_select":
            option = _option_for(options, value)
            if option is None:
                return f"{value!r} is not one of the choices of {field}."
            self.values[field] = option
        elif kind == "multi_static_select":
            chosen = [_option_for(options, part.strip()) for part in value.split(",") if part.strip()]
            if any(option is None for option in chosen):
                return f"Some of {value!r} are not choices of {field}."
            self.values[field] = chosen
        else:
            # Typed text reaches the bot entity-encoded, as Slack sends it.
            self.values[field] = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") or None
        return f"{field} = {self._shown(block)}"

    def state_values(self) -> dict[str, Any]:
        """`view.state.values` as Slack sends them with a submission."""
        state: dict[str, Any] = {}
        for block in self._inputs():
            element = block.get("element", {})
            kind = element.get("type")
            value = self.values.get(block["block_id"])
            entry: dict[str, Any] = {"type": kind}
            if kind == "static_select":
                entry["selected_option"] = value
            elif kind == "multi_static_select":
                entry["selected_options"] = value or []
            else:
                entry["value"] = value
            state[block["block_id"]] = {element.get("action_id", "value"): entry}
        return state


def _option_for(options: list[dict[str, Any]], wanted: str) -> dict[str, Any] | None:
    wanted_lower = wanted.lower()
    for option in options:
        label = _text_of(option.get("text")).lower()
        if str(option.get("value", "")).lower() == wanted_lower or label.startswith(wanted_lower):
            return option
    return None
