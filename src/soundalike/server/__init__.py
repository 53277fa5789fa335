"""The HTTP server: a JSON API (with OpenAPI docs), the web page, and OpenSubsonic ``sonicSimilarity`` endpoints.

``soundalike serve`` runs :func:`create_app` under uvicorn (:func:`soundalike.server.run.serve`). Importing this
package is cheap: FastAPI loads only when the app is created.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "serve"]


def __getattr__(name: str) -> Any:
    """``create_app`` and ``serve`` imported on first use."""
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "serve":
        from .run import serve

        return serve
    raise AttributeError(f"module 'soundalike.server' has no attribute {name!r}")
