"""Customer messages (SMS + e-mail), one per status change, idempotent by key."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import activity

from activities.common import logger, refusals_as
from adapters.notify import NotificationClient
from domain.messages import render
from contracts.steps import CustomerNotice, ErrorType


@dataclass
class NotifyActivities:
    notify: NotificationClient

    @activity.defn
    async def notify_customer(self, notice: CustomerNotice) -> None:
        subject, text = render(notice.event, notice.params)
        with refusals_as(ErrorType.NOTIFY_REFUSED):
            await self.notify.send_sms(phone=notice.phone, text=text, idempotency_key=f"{notice.key}:sms")
            if notice.email:
                await self.notify.send_email(
                    email=notice.email, subject=subject, text=text, idempotency_key=f"{notice.key}:email"
                )
        logger().info("customer.notified", notice_event=notice.event)
