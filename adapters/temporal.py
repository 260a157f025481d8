"""The Temporal client, built one way for the worker, the API and the tools: Orkestr's data
converter (pydantic: dataclasses and models in, the same out) and the tracing interceptors."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from observability import tracing_interceptors
from settings import Settings


async def connect(settings: Settings, runtime: Any = None) -> Client:
    return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace,
                                data_converter=pydantic_data_converter, runtime=runtime,
                                interceptors=tracing_interceptors(settings.otel_enabled))
