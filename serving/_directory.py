"""The variant directory of one ingress replica: which version each variant has loaded, which variants a
request may reach (by route, by ``model_id``), and the call that lets a variant answer.

ONNX variants are slots inside the replica; Spark-scored ones are deployments reached through handles
(anything with ``.remote`` methods: no Serve import here, so a test can hand in plain objects).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from scoring import OnnxScorer
from serving._contract import ServedVariant
from serving._requests import Envelope
from serving._settings import AppSettings
from serving._variants import VariantAnswer, VariantSlot


class VariantDirectory:
    """The variants of the app as one replica sees them; ``versions`` holds the loaded ones only."""

    def __init__(self, settings: AppSettings, handles: Mapping[str, Any]) -> None:
        self.settings = settings
        self.handles = dict(handles)  # Spark-scored variants, one deployment each
        self.slots = {name: VariantSlot(name, variant.source, settings.scorer_threads)
                      for name, variant in settings.variants.items() if not variant.remote}  # fmt: skip
        self.versions: dict[str, str] = {}  # variant -> the version it has loaded
        self._trained_on: dict[str, int | None] = {}  # model version -> the Delta version it was trained on

    async def refresh(self) -> dict[str, dict[str, Any]]:
        """Ask every variant what it has loaded; each configured variant's info, in the config's order."""
        infos = {name: slot.info() for name, slot in self.slots.items()}
        remote = await asyncio.gather(*(handle.info.remote() for handle in self.handles.values()))
        infos.update({info["variant"]: info for info in remote})
        self.versions = {name: info["version"] for name, info in infos.items() if info["ready"]}
        for info in infos.values():
            if info["ready"]:
                trained_on = info.get("lineage", {}).get("data.delta_version")
                self._trained_on[info["version"]] = int(trained_on) if trained_on is not None else None
        return {name: infos[name] for name in self.settings.variants}

    def version_of(self, variant: str) -> str:
        return self.versions.get(variant, "none")

    def trained_on(self, version: str) -> int | None:
        """The Delta version of the data a loaded model version was trained on (None: not known)."""
        return self._trained_on.get(version)

    def routable(self, weights: Mapping[str, float]) -> dict[str, float]:
        """The weights of the variants that have a model loaded (a missing alias gets no traffic)."""
        return {name: weight for name, weight in weights.items() if name in self.versions}

    def target(self, model_id: str) -> str | None:
        """The variant a request's ``model_id`` names: a variant, an alias (with or without @), a version."""
        if model_id in self.settings.variants:
            return model_id
        for name, variant in self.settings.variants.items():
            if variant.source.alias == model_id.removeprefix("@"):
                return name
        matches = [name for name, version in self.versions.items() if version == model_id]
        return matches[0] if matches else None

    def served(self) -> list[str]:
        """What a ``model_id`` may name, for the error that lists it."""
        return sorted({*self.settings.variants, *self.versions.values()})

    async def served_variants(self, weights: Mapping[str, float]) -> list[ServedVariant]:
        """The loaded variants with what they take and the model_id values that reach them."""
        inputs = {name: slot.inputs() for name, slot in self.slots.items()}
        remote = await asyncio.gather(*(handle.inputs.remote() for handle in self.handles.values()))
        inputs.update(zip(self.handles, remote, strict=True))
        candidates = {*self.settings.variants, *self.versions.values()}
        for variant in self.settings.variants.values():
            if variant.source.alias is not None:
                candidates |= {variant.source.alias, f"@{variant.source.alias}"}
        reaching: dict[str, list[str]] = {name: [] for name in self.settings.variants}
        for candidate in sorted(candidates):
            target = self.target(candidate)
            if target is not None:
                reaching[target].append(candidate)
        routable = self.routable(weights)
        return [ServedVariant(name, tuple(reaching[name]), found, routable.get(name, 0.0) > 0)
                for name, found in inputs.items() if found is not None]  # fmt: skip

    async def call(self, variant: str, method: str, envelope: Envelope) -> VariantAnswer:
        """Let ``variant`` answer a checked request (``method``: score or recommend)."""
        slot = self.slots.get(variant)
        if slot is None:
            answer: VariantAnswer = await getattr(self.handles[variant], method).remote(
                envelope.payload, self.settings.sticky_key
            )
            return answer
        call = getattr(slot, method)
        if envelope.rows >= OnnxScorer.BATCH_ROWS:  # a large batch must not stop the event loop
            return await asyncio.to_thread(call, envelope.payload, self.settings.sticky_key)
        return call(envelope.payload, self.settings.sticky_key)

    async def reload_local(self) -> dict[str, Any]:
        """Re-resolve the in-process variants, on a thread: loading a version takes a second, and requests
        go on meanwhile on the current one."""
        return {name: await asyncio.to_thread(slot.reload) for name, slot in self.slots.items()}

    async def reload_remote(self) -> dict[str, list[Any]]:
        """Every replica of every Spark-scored variant re-resolves its alias."""
        return {name: await handle.broadcast("reload").results_async() for name, handle in self.handles.items()}
