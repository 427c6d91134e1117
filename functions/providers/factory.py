"""One place that builds the adapter for a model: dialect -> adapter class, wired to the HTTP policy."""

from __future__ import annotations

import time
from collections.abc import Callable

from functions.common.settings import ProviderSettings
from functions.providers.base import VideoProvider
from functions.providers.catalog import Catalog, Dialect, load_catalog
from functions.providers.http import HttpPolicy, ProviderHttp
from functions.providers.kling import KlingProvider
from functions.providers.runway import RunwayProvider
from functions.providers.videos import VideosProvider

ADAPTERS: dict[Dialect, type[VideoProvider]] = {
    Dialect.VIDEOS: VideosProvider,
    Dialect.KLING: KlingProvider,
    Dialect.RUNWAY: RunwayProvider,
}


def build_http(settings: ProviderSettings, policy: HttpPolicy | None = None) -> ProviderHttp:
    return ProviderHttp(base_url=settings.cometapi_base_url, api_key=settings.api_key(), policy=policy or HttpPolicy())


def provider_for(
    model_id: str, http: ProviderHttp, catalog: Catalog | None = None, *, clock: Callable[[], float] = time.time
) -> VideoProvider:
    """The adapter that speaks ``model_id``'s dialect. The model must be in the catalog."""
    catalog = catalog or load_catalog()
    spec = catalog.get(model_id)
    if spec is None:
        raise KeyError(model_id)
    return ADAPTERS[spec.dialect](http, catalog, clock=clock)
