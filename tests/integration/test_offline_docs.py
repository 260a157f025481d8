"""``/docs`` and ``/redoc`` load every asset from the server itself (no CDN), so they work offline."""

from __future__ import annotations

import re
from typing import Any

import httpx


async def test_sandbox_docs_load_their_assets_from_the_sandbox(make_sandbox: Any) -> None:
    async with make_sandbox() as sb, httpx.AsyncClient(base_url=sb.url) as http:
        for page in ("/docs", "/redoc"):
            html = (await http.get(page)).text
            assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css|png))"', html)
            assert assets, html
            assert all(a.startswith("/") for a in assets), assets  # nothing from another host
            for asset in assets:
                r = await http.get(asset)
                assert r.status_code == 200 and len(r.content) > 1000, asset
            assert "cdn." not in html and "fonts.googleapis" not in html
        spec = (await http.get("/openapi.json")).json()
        assert "/cdek/v2/orders" in spec["paths"]
