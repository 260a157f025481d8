"""Simulated SMS + e-mail gateway.

Wire base ``/notify/v1`` with ``Authorization: Bearer <token>`` (:data:`TOKENS`, the default of
``settings.notify_token``):

* ``POST /notify/v1/sms`` ``{to, text, client_msg_id}`` → ``{id, status: "accepted"}``
* ``POST /notify/v1/email`` ``{to, subject, text, client_msg_id}`` → ``{id, status: "accepted"}``

Idempotent by ``client_msg_id`` (the usual anchor, ``/work/shared/reference/fiscal-and-idempotency.md``):
a repeat returns the first ``id`` and records nothing new; the same ``client_msg_id`` with a
different channel, recipient or text is refused with 409 ``{"code": "IdempotencyConflict"}``.
Errors: 401 bad token, 422 invalid request (e.g. an e-mail address without ``@``).

Drive: ``GET /sandbox/notifications?phone=...`` (or ``?email=...``, or neither for all) → the
messages sent, oldest first: ``{id, channel, to, subject, text, at}``; plus
``/sandbox/notify/faults`` (operations: sms, email).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator

from sandbox.common import Background, Faults, SandboxConfig
from sandbox.state import Persisted

log = structlog.get_logger("sandbox.notify")

TOKENS = frozenset({"dev-notify-token"})


@dataclass
class Message:
    id: str
    channel: str
    to: str
    subject: str | None
    text: str
    at: str
    client_msg_id: str


class SmsIn(BaseModel):
    to: str = Field(min_length=5, max_length=20)
    text: str = Field(min_length=1, max_length=2000)
    client_msg_id: str = Field(min_length=1, max_length=255)


class EmailIn(BaseModel):
    to: str = Field(min_length=3, max_length=320)
    subject: str = Field(min_length=1, max_length=500)
    text: str = Field(min_length=1)
    client_msg_id: str = Field(min_length=1, max_length=255)

    @field_validator("to")
    @classmethod
    def _address(cls, v: str) -> str:
        if "@" not in v.strip("@"):
            raise ValueError("not an e-mail address")
        return v


class NotifySim(Persisted):
    """Sent SMS and e-mails (kept across restarts), idempotent by ``client_msg_id``."""

    persisted: ClassVar[dict[str, Any]] = {"messages": list[Message]}

    def __init__(self, config: SandboxConfig, bg: Background) -> None:
        self.config = config
        self.bg = bg
        self.faults = Faults("notify")
        self.tokens = set(TOKENS)
        self.messages: list[Message] = []
        self.by_client_id: dict[str, Message] = {}

    def restored(self) -> None:
        self.by_client_id = {m.client_msg_id: m for m in self.messages}

    def send(self, channel: str, to: str, subject: str | None, text: str, client_msg_id: str) -> tuple[int, dict[str, Any]]:
        first = self.by_client_id.get(client_msg_id)
        if first is not None:
            if (first.channel, first.to, first.subject, first.text) != (channel, to, subject, text):
                return 409, {"code": "IdempotencyConflict", "message": "client_msg_id was used for another message"}
            return 200, {"id": first.id, "status": "accepted"}
        msg = Message(
            id=uuid.uuid4().hex,
            channel=channel,
            to=to,
            subject=subject,
            text=text,
            at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            client_msg_id=client_msg_id,
        )
        self.messages.append(msg)
        self.by_client_id[client_msg_id] = msg
        log.info("notify.accepted", channel=channel, to=to, id=msg.id)
        return 200, {"id": msg.id, "status": "accepted"}


def router(sim: NotifySim) -> APIRouter:
    r = APIRouter(tags=["notify"])

    def authorized(request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and token in sim.tokens

    unauthorized = {"code": "Unauthorized", "message": "Bad token"}

    @r.post("/notify/v1/sms", summary="Send an SMS (idempotent by client_msg_id)")
    async def sms(body: SmsIn, request: Request) -> JSONResponse:
        await sim.faults.check("sms")
        if not authorized(request):
            return JSONResponse(unauthorized, status_code=401)
        status, answer = sim.send("sms", body.to, None, body.text, body.client_msg_id)
        return JSONResponse(answer, status_code=status)

    @r.post("/notify/v1/email", summary="Send an e-mail (idempotent by client_msg_id)")
    async def email(body: EmailIn, request: Request) -> JSONResponse:
        await sim.faults.check("email")
        if not authorized(request):
            return JSONResponse(unauthorized, status_code=401)
        status, answer = sim.send("email", body.to, body.subject, body.text, body.client_msg_id)
        return JSONResponse(answer, status_code=status)

    @r.get("/sandbox/notifications", tags=["sandbox:notify"], summary="Messages sent, oldest first")
    async def notifications(phone: str | None = None, email: str | None = None) -> list[dict[str, Any]]:
        out = []
        for m in sim.messages:
            if phone is not None and not (m.channel == "sms" and m.to == phone):
                continue
            if email is not None and not (m.channel == "email" and m.to.lower() == email.lower()):
                continue
            view = asdict(m)
            view.pop("client_msg_id")
            out.append(view)
        return out

    return r
