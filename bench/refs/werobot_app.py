"""The established Python framework for official accounts, WeRoBot, with its default settings.

Its default keeps a session per user (SQLiteStorage, `werobot_session.sqlite3` in the working
directory, read and written on every message), which is what a WeRoBot deployment gets unless it
configures otherwise. bench/wechat_endpoint.py serves `robot.wsgi` (a Bottle app) with gunicorn
from a temporary working directory, so the session file never lands in the repository.
"""

from __future__ import annotations

import os

from werobot import WeRoBot

robot = WeRoBot(token=os.environ["WECHAT_TOKEN"])


@robot.text
def echo(message):  # type: ignore[no-untyped-def]
    return f"收到：{message.content}"


app = robot.wsgi
