"""The HTTP server: a JSON API (with OpenAPI docs), the web page, and OpenSubsonic ``sonicSimilarity`` endpoints.

``soundalike serve`` runs :func:`create_app` under uvicorn (:func:`soundalike.server.run.serve`). Importing this
package is cheap: FastAPI loads only when the app is created.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["create_app", "serve"]
_HOMES = {"create_app": ".app", "serve": ".run"}


def __getattr__(name: str) -> Any:
    """``create_app`` and ``serve`` imported on first use (they load FastAPI and uvicorn)."""
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
