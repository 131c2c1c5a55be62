"""Dagster resources, and the one place that picks embedded or production settings."""

from __future__ import annotations

import os

from resources.storage import LakeResource, LandingZoneResource
from sands.settings import SandsPaths, is_uri

__all__ = ["LakeResource", "LandingZoneResource", "build_resources"]


def build_resources(env: dict[str, str] | None = None) -> dict[str, object]:
    """Resources for `SANDS_ENV` (`embedded`, the default, or `production`)."""
    env = dict(os.environ if env is None else env)
    paths = SandsPaths.from_env(env)
    mode = env.get("SANDS_ENV", "embedded")
    if mode == "production":
        missing = [v for v in ("SANDS_LANDING_URI", "SANDS_LAKE_URI") if not is_uri(env.get(v, ""))]
        if missing:
            raise ValueError(
                f"SANDS_ENV=production needs object-store URIs in {', '.join(missing)}"
            )
    elif mode != "embedded":
        raise ValueError(f"SANDS_ENV must be 'embedded' or 'production', not {mode!r}")
    else:
        paths.ensure_local_dirs()
    return {
        "landing": LandingZoneResource(root=paths.landing, storage_options=paths.storage_options),
        "lake": LakeResource(root=paths.lake, storage_options=paths.storage_options),
    }
