"""What each error Slack documents means for a message Liaison owes: retry, fix the installation, or
give up and tell ops. From Slack's method pages for chat.postMessage, chat.update, views.publish,
conversations.history/replies and the file upload methods."""

from __future__ import annotations

from enum import Enum

# Slack is having trouble or asks us to slow down: the same call will succeed later.
TRANSIENT = frozenset(
    {
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "ratelimited",
        "rate_limited",
        "message_limit_exceeded",
        "team_added_to_org",
        "update_failed",
        "hash_conflict",
        "accesslimited",
    }
)

# The installation itself is broken (token, scopes, account): nothing gets through until an admin
# fixes it; messages wait (they are not lost), /healthz says degraded and ops are told once.
CREDENTIALS = frozenset(
    {
        "not_authed",
        "invalid_auth",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "missing_scope",
        "not_allowed_token_type",
        "org_login_required",
        "two_factor_setup_required",
        "enterprise_is_restricted",
    }
)

# This message can never be delivered as it is: fail it, tell ops, let the lane go on.
PERMANENT = frozenset(
    {
        # the channel or the bot's place in it
        "channel_not_found",
        "duplicate_channel_not_found",
        "not_in_channel",
        "is_archived",
        "is_inactive",
        "messages_tab_disabled",
        "team_access_not_granted",
        "ekm_access_denied",
        "no_permission",
        "access_denied",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "restricted_action_non_threadable_channel",
        "restricted_action_thread_locked",
        "cannot_reply_to_message",
        "as_user_not_supported",
        "user_not_found",
        "user_not_visible",
        # the message itself
        "msg_too_long",
        "msg_blocks_too_long",
        "no_text",
        "invalid_blocks",
        "invalid_blocks_format",
        "block_mismatch",
        "too_many_attachments",
        "attachment_payload_limit_exceeded",
        "too_many_contact_cards",
        "invalid_metadata_format",
        "invalid_metadata_schema",
        "metadata_too_large",
        "metadata_must_be_sent_from_app",
        "duplicate_message_not_found",
        "invalid_arguments",
        "invalid_arg_name",
        "invalid_array_arg",
        "invalid_charset",
        "invalid_form_data",
        "invalid_post_type",
        "missing_post_type",
        "invalid_cursor",
        "invalid_ts_latest",
        "invalid_ts_oldest",
        "thread_not_found",
        # edits
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
        # views
        "not_enabled",
        "not_found",
        "view_too_large",
        "duplicate_external_id",
        # files
        "file_not_found",
        "file_uploads_disabled",
        "file_upload_size_restricted",
        "invalid_channel",
        "posting_to_general_channel_denied",
        "slack_connect_file_upload_sharing_blocked",
        # endpoints
        "method_deprecated",
        "deprecated_endpoint",
        "unknown_method",
    }
)


class ErrorKind(Enum):
    TRANSIENT = "transient"
    CREDENTIALS = "credentials"
    PERMANENT = "permanent"
    UNKNOWN = "unknown"


def classify(code: str, status: int = 200) -> ErrorKind:
    if status == 429 or status >= 500 or code in TRANSIENT:
        return ErrorKind.TRANSIENT
    if code in CREDENTIALS:
        return ErrorKind.CREDENTIALS
    if code in PERMANENT:
        return ErrorKind.PERMANENT
    return ErrorKind.UNKNOWN


ADVICE = {
    "not_in_channel": "Invite Liaison to the channel (`/invite @liaison`).",
    "channel_not_found": "The channel no longer exists or is private: re-link the country's channel.",
    "is_archived": "The channel is archived: link the country's new channel.",
    "team_access_not_granted": "An Enterprise Grid admin must grant Liaison access to that workspace.",
    "ekm_access_denied": "Enterprise Key Management revoked access to that conversation.",
    "no_permission": "Liaison lacks permission in that channel (Slack Connect or channel settings).",
    "restricted_action": "A workspace or channel setting stops Liaison from posting there.",
    "restricted_action_read_only_channel": "The channel is read-only for apps: allow Liaison to post.",
    "restricted_action_thread_only_channel": "The channel allows only thread replies.",
    "restricted_action_non_threadable_channel": "The channel does not allow threads.",
    "msg_too_long": "The message was too long for Slack; see Liaison's log.",
    "invalid_auth": "The bot token is invalid: set SLACK_BOT_TOKEN (or the rotation settings) again.",
    "not_authed": "No bot token was sent: set SLACK_BOT_TOKEN.",
    "token_revoked": "The bot token was revoked (app uninstalled?): reinstall and set SLACK_BOT_TOKEN.",
    "token_expired": "The bot token expired: configure token rotation (SLACK_CLIENT_ID, "
    "SLACK_CLIENT_SECRET, SLACK_REFRESH_TOKEN) or set a fresh SLACK_BOT_TOKEN.",
    "account_inactive": "The bot user was deactivated: reinstall the app.",
    "missing_scope": "The app lacks a scope it needs: reinstall it from manifest.yml.",
    # Ours, not Slack's: an upload whose stored content (storage.files) was deleted before it went.
    "file_missing": "The file's content was deleted before it could be sent: ask for it again.",
}


def advice_for(code: str) -> str:
    return ADVICE.get(code, "See Liaison's log for details.")
