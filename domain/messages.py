"""What customers read: one Russian message per status change that matters to them."""

from __future__ import annotations

from typing import Any

TEMPLATES: dict[str, tuple[str, str]] = {
    # event: (e-mail subject, text)
    "accepted": ("Заказ {number} принят", "Заказ {number} принят. Сумма {total}. Оплатите по ссылке: {payment_url}"),
    "paid": ("Заказ {number} оплачен", "Заказ {number} оплачен. Мы начали его собирать."),
    "shipped": ("Заказ {number} передан в доставку", "Заказ {number} передан в службу доставки {carrier}. Трек-номер: {tracking}."),
    "delivered": ("Заказ {number} доставлен", "Заказ {number} доставлен. Спасибо за покупку!"),
    "ready": ("Заказ {number} ждёт вас", "Заказ {number} готов к выдаче в магазине {store}. Заберите до {until}."),
    "reminder": ("Заказ {number}: остался 1 день", "Напоминаем: заказ {number} ждёт вас в магазине {store} до {until}."),
    "expired": ("Заказ {number} отменён", "Срок хранения заказа {number} истёк, резерв снят."),
    "cancelled": ("Заказ {number} отменён", "Заказ {number} отменён. {reason}"),
    "payment_expired": ("Заказ {number} не оплачен", "Заказ {number} отменён: оплата не поступила вовремя."),
    "payment_declined": ("Оплата заказа {number} отклонена", "Оплата заказа {number} отклонена банком, заказ отменён."),
    "refunded": ("Возврат по заказу {number}", "По заказу {number} оформлен возврат {amount}."),
    "return_registered": ("Возврат {number} оформлен", "Возврат {number} оформлен. {instructions}"),
    "return_rejected": ("Возврат {number}", "Часть товаров по возврату {number} не принята: {reason}"),
    "return_abandoned": ("Возврат {number} закрыт", "Мы не получили товары по возврату {number}, заявка закрыта."),
    "substitution": ("Изменение заказа {number}", "В заказе {number} изменился состав: {change}"),
    "order_changed": ("Заказ {number} изменён", "Заказ {number} изменён: {change}. Сумма заказа {total}."),
    "order_changed_pay": ("Заказ {number} изменён", "Заказ {number} изменён: {change}. Сумма заказа {total}. Оплатите по новой ссылке: {payment_url}"),
    "edit_extra_payment": ("Доплата по заказу {number}", "Заказ {number} меняется: {change}. Доплатите {amount} по ссылке: {payment_url}. Без доплаты заказ останется прежним."),
    "extra_payment": ("Доплата по заказу {number}", "Для замены в заказе {number} нужна доплата {amount}: {payment_url}"),
    # click & collect / click & reserve (issue 4)
    "accepted_on_pickup": ("Заказ {number} принят", "Заказ {number} принят. Сумма {total}, оплата при получении в магазине {store}. Сообщим, когда он будет готов к выдаче."),
    "reserved": ("Резерв {number} оформлен", "Резерв {number} в магазине {store} оформлен. Сообщим, когда товар будет отложен."),
    "collected": ("Заказ {number} выдан", "Заказ {number} выдан в магазине. Спасибо за покупку!"),
}


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "—"


def render(event: str, params: dict[str, Any]) -> tuple[str, str]:
    """(subject, text) for an event; unknown parameters print as a dash rather than failing."""
    subject, body = TEMPLATES[event]
    values = _Blank(params)
    return subject.format_map(values), body.format_map(values)


def mask_phone(phone: str) -> str:
    digits = "".join(ch for ch in phone if ch.isdigit())
    return f"+{digits[:1]}***{digits[-4:]}" if len(digits) >= 5 else "***"
