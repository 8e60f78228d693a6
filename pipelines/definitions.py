"""The one ``Definitions`` of the code location, assembled from every stage module.

Each module under ``assets/`` that exposes ``defs`` contributes its assets, checks, jobs,
schedules and sensors (with the catalog's kinds, owners, code versions and column schemas
mapped over its specs); automation.py adds the cross-stage jobs. Adding a stage is adding a
module: nothing here changes.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import warnings
from types import ModuleType

import dagster as dg

import assets as assets_pkg
from assets import catalog
from pipelines import automation
from pipelines.resources import default_resources

_NOT_STAGES = {"common", "resources", "partitions", "catalog"}


def stage_modules() -> list[ModuleType]:
    """Every stage module (or stage package) under ``assets/``, in name order."""
    mods = []
    for info in sorted(pkgutil.iter_modules(assets_pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_") or info.name in _NOT_STAGES:
            continue
        mods.append(importlib.import_module(f"assets.{info.name}"))
    return mods


def build_definitions(resources: dict[str, object] | None = None) -> dg.Definitions:
    with warnings.catch_warnings():  # map_asset_specs is a preview API; its behaviour is tested here
        warnings.simplefilter("ignore", dg.PreviewWarning)
        parts = [
            m.defs.map_asset_specs(func=functools.partial(catalog.standardize, module=m.__name__))
            for m in stage_modules()
            if isinstance(getattr(m, "defs", None), dg.Definitions)
        ]
    merged = dg.Definitions.merge(*parts) if parts else dg.Definitions()
    stage_assets = [a for a in (merged.assets or []) if isinstance(a, dg.AssetsDefinition)]
    return dg.Definitions.merge(
        merged,
        automation.definitions(stage_assets),
        dg.Definitions(resources=resources if resources is not None else default_resources()),
    )


defs = build_definitions()
