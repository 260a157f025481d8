"""Pickup points of both carriers in one shape: Russian Post offices («Поиск ОПС») and CDEK
points, over real HTTP against the simulators."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.errors import ExternalUnavailable
from test_cdek import cdek_env
from test_post import AUTH, post_env


async def test_post_offices_of_a_city(make_sandbox: Any) -> None:
    async with post_env(make_sandbox) as (_sb, client, raw):
        offices = await client.post_offices(city="Санкт-Петербург")
        assert [o.kind for o in offices] == ["post_office", "post_office", "parcel_locker"]
        first = offices[0]
        assert first.carrier == "post" and first.code == first.postcode and first.city == "Санкт-Петербург"
        assert (first.try_on, first.card_payment, first.cash_payment) == (False, True, True)
        assert dict(first.hours)[1] == "08:00-20:00" and 7 in dict(first.hours)
        assert 7 not in dict(offices[1].hours)  # the second office is closed on Sundays
        assert not offices[2].cash_payment  # a parcel locker takes cards only
        assert await client.post_offices(city="Атлантида") == []
        # nearby, by coordinates: the nearest office first, with its distance in metres
        near = (await raw.get("/post/postoffice/1.0/nearby", params={"latitude": first.lat, "longitude": first.lon, "top": 2},
                              headers=AUTH)).json()
        assert [o["postal-code"] for o in near][0] == first.code and near[0]["distance"] == 0
        assert (await raw.get(f"/post/postoffice/1.0/{first.code}")).status_code == 401
        await raw.post("/sandbox/post/faults", json={"fail_next": 1, "status": 503, "operations": ["postoffice"]})
        with pytest.raises(ExternalUnavailable):
            await client.post_offices(city="Москва")


async def test_cdek_points_say_where_one_can_try_on(make_sandbox: Any) -> None:
    async with cdek_env(make_sandbox) as (_sb, client, _raw):
        points = await client.points(city="Kazan")
        assert len(points) == 3 and {p.carrier for p in points} == {"cdek"}
        # the sandbox's points 1-2 have a fitting room, point 2 takes no cash
        assert [p.try_on for p in points] == [True, True, False]
        assert [p.cash_payment for p in points] == [True, False, True]
        assert all(p.hours and p.address and p.city == "Казань" for p in points)
