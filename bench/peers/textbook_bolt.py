"""The textbook Bolt app, as Slack's getting-started guide writes it: `App(...)`, one
`@app.command` listener that stores the command with one SQLite insert, then `app.start()`.

    SLACK_SIGNING_SECRET=... python bench/peers/textbook_bolt.py --port 3102 --db /tmp/peer.db
"""

from __future__ import annotations

import argparse
import os
import sqlite3
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True)
    args = parser.parse_args()
    with sqlite3.connect(args.db) as setup:
        setup.execute("CREATE TABLE IF NOT EXISTS arrival (user_id TEXT, text TEXT)")

    app = App(
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        token=os.environ["SLACK_BOT_TOKEN"],
        # The one change to the textbook: Slack's Web API is the benchmark's stand-in (auth.test).
        client=WebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"]),
    )

    @app.command("/arrivals")
    def arrivals(ack: Ack, command: dict[str, Any]) -> None:
        with sqlite3.connect(args.db) as connection:
            connection.execute("INSERT INTO arrival VALUES (?, ?)", (command["user_id"], command["text"]))
        connection.close()
        ack(f"Recorded: {command['text']}")

    print(f"listening on http://127.0.0.1:{args.port}", flush=True)
    app.start(port=args.port)


if __name__ == "__main__":
    main()
