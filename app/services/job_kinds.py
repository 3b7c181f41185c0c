"""Every kind of outbox job, by name: what services enqueue and what the worker registers.

A kind is stored in the outbox row and looked up by the worker, so a misspelt string would only
show when its row went dead; naming each kind once here makes a typo an import or type error.
"""

from __future__ import annotations

from enum import StrEnum


class JobKind(StrEnum):
    # WeChat's API (app/jobs/wechat.py)
    SEND_TEXT = "wechat.send_text"
    SEND_TEMPLATE = "wechat.send_template"
    PUSH_MENU = "wechat.push_menu"
    # Staff answers to students' messages, as custom messages (app/jobs/inbox.py)
    SEND_INBOX_REPLY = "inbox.send_reply"
    # Photos sent in the chat (app/jobs/photos.py)
    CHECK_CHAT_IMAGE = "photos.check_chat_image"
    # After payment (app/jobs/submissions.py)
    VERIFY_SUBMISSION = "submissions.verify"
    REFUND = "payments.refund"
    # WeChat Pay upkeep (app/jobs/payments.py)
    SYNC_ORDER = "payments.sync_order"
    CLOSE_ORDER = "payments.close_order"
    SYNC_REFUND = "payments.sync_refund"
