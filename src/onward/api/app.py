"""The FastAPI application factory."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from onward.api.temporal import TemporalConnection
from onward.config import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(title="onward", version="0.1.0", description="Durable AI agents on Temporal.")
    temporal = TemporalConnection(settings)
    app.state.settings = settings
    app.state.temporal = temporal

    @app.get("/healthz", tags=["health"])
    async def healthz() -> JSONResponse:  # pyright: ignore[reportUnusedFunction]
        """200 when Temporal is reachable, 503 with the reason when not."""
        ok, reason = await temporal.reachable()
        body: dict[str, Any] = {
            "status": "ok" if ok else "unavailable",
            "temporal": {"address": settings.target_address, "reachable": ok, "error": reason},
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    return app
