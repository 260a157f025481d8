"""Client of the SMS + e-mail gateway (``settings.notify_url``, e.g.
``http://127.0.0.1:8100/notify``; requests go to ``v1/sms`` / ``v1/email`` with a Bearer token).

The idempotency key travels as ``client_msg_id``: a repeat returns the first message id and
sends nothing. Any 4xx is an :class:`ExternalRefusal` (``code`` from the body, else ``HTTP<status>``).
"""

from __future__ import annotations

from typing import Any

import httpx

from adapters.errors import ExternalRefusal
from adapters.http import request

SYSTEM = "notify"


class NotificationClient:
    def __init__(self, http: httpx.AsyncClient, *, token: str) -> None:
        self._http = http
        self._headers = {"Authorization": f"Bearer {token}"}

    async def _send(self, operation: str, url: str, payload: dict[str, Any]) -> str:
        resp = await request(self._http, SYSTEM, operation, "POST", url, json=payload, headers=self._headers)
        try:
            body = resp.json()
        except ValueError:
            body = None
        if resp.status_code >= 400 or not isinstance(body, dict) or "id" not in body:
            code = body.get("code") if isinstance(body, dict) else None
            message = (body.get("message") if isinstance(body, dict) else None) or f"HTTP {resp.status_code}: {resp.text[:200]}"
            raise ExternalRefusal(SYSTEM, operation, str(message), code=str(code or f"HTTP{resp.status_code}"))
        return str(body["id"])

    async def send_sms(self, *, phone: str, text: str, idempotency_key: str) -> str:
        """Send an SMS; returns the gateway's message id (the first one on a repeat)."""
        return await self._send("sms", "v1/sms", {"to": phone, "text": text, "client_msg_id": idempotency_key})

    async def send_email(self, *, email: str, subject: str, text: str, idempotency_key: str) -> str:
        """Send an e-mail; returns the gateway's message id (the first one on a repeat)."""
        return await self._send(
            "email", "v1/email", {"to": email, "subject": subject, "text": text, "client_msg_id": idempotency_key}
        )
