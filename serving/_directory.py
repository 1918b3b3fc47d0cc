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
from serving._contract import ServedVariant, VariantInputs
from serving._requests import Envelope
from serving._settings import AppSettings
from serving._variants import VariantAnswer, VariantInfo, VariantSlot

# A Spark-scored variant whose replica does not say what it has loaded within this is taken as not ready
# and gets no routed traffic until it does: calls to a lost replica wait for its replacement (its JVM
# takes about 20 s to start), and the replica's refresh must not wait with them.
REMOTE_STATUS_SECONDS = 5.0


class VariantDirectory:
    """The variants of the app as one replica sees them; ``versions`` holds the loaded ones only."""

    def __init__(self, settings: AppSettings, handles: Mapping[str, Any]) -> None:
        self.settings = settings
        self.handles = dict(handles)  # Spark-scored variants, one deployment each
        self.slots = {
            name: VariantSlot(name, variant.source, settings.scorer_threads)
            for name, variant in settings.variants.items()
            if not variant.remote
        }
        self.versions: dict[str, str] = {}  # variant -> the version it has loaded
        self._trained_on: dict[str, int | None] = {}  # model version -> the Delta version it was trained on

    async def refresh(self) -> dict[str, VariantInfo]:
        """Ask every variant what it has loaded; each configured variant's info, in the config's order."""
        infos = {name: slot.info() for name, slot in self.slots.items()}
        remote = await asyncio.gather(*(self._remote_info(name) for name in self.handles))
        infos.update({info.variant: info for info in remote})
        self.versions = {name: info.version for name, info in infos.items() if info.ready and info.version}
        for info in infos.values():
            if info.ready and info.version:
                trained_on = info.lineage.get("data.delta_version")
                self._trained_on[info.version] = int(trained_on) if trained_on is not None else None
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
        remote = await asyncio.gather(*(self._remote_inputs(name) for name in self.handles))
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
        return [
            ServedVariant(name, tuple(reaching[name]), found, routable.get(name, 0.0) > 0)
            for name, found in inputs.items()
            if found is not None
        ]

    async def call(self, variant: str, method: str, envelope: Envelope) -> VariantAnswer:
        """Let ``variant`` answer a checked request (``method``: score or recommend)."""
        slot = self.slots.get(variant)
        if slot is None:
            remote = getattr(self.handles[variant], method).remote(envelope.payload, self.settings.sticky_key)
            timeout = self.settings.variant_timeout_s
            try:
                answer: VariantAnswer = await asyncio.wait_for(_awaited(remote), timeout)
            except TimeoutError:
                return VariantAnswer.refused(
                    503,
                    "model",
                    f"variant {variant} (scored by Spark) did not answer "
                    f"within serving.variant_timeout_s = {timeout:g} s; its replica may "
                    "be restarting: retry",
                )
            return answer
        call = getattr(slot, method)
        if envelope.rows >= OnnxScorer.BATCH_ROWS:  # a large batch must not stop the event loop
            return await asyncio.to_thread(call, envelope.payload, self.settings.sticky_key)
        return call(envelope.payload, self.settings.sticky_key)

    async def _ask(self, variant: str, method: str) -> Any:
        """A Spark-scored variant's answer to a status call (info, inputs), within ``REMOTE_STATUS_SECONDS``:
        a lost replica must not hold /health or /openapi.json while Serve replaces it."""
        return await asyncio.wait_for(
            _awaited(getattr(self.handles[variant], method).remote()), REMOTE_STATUS_SECONDS
        )

    async def _remote_info(self, variant: str) -> VariantInfo:
        try:
            info: VariantInfo = await self._ask(variant, "info")
            return info
        except Exception as error:  # no replica answered (lost, being replaced): not ready, says why
            reason = (
                f"no replica answered within {REMOTE_STATUS_SECONDS:g} s ({type(error).__name__}): one lost "
                "and being replaced?"
            )
            source = self.settings.variants[variant].source.describe()
            return VariantInfo(variant, source, ready=False, missing=False, error=reason)

    async def _remote_inputs(self, variant: str) -> VariantInputs | None:
        try:
            inputs: VariantInputs | None = await self._ask(variant, "inputs")
            return inputs
        except Exception:  # no replica answered: listed again once one does
            return None

    async def reload_local(self) -> dict[str, Any]:
        """Re-resolve the in-process variants, on a thread: loading a version takes a second, and requests
        go on meanwhile on the current one."""
        return {name: await asyncio.to_thread(slot.reload) for name, slot in self.slots.items()}

    async def reload_remote(self) -> dict[str, list[Any]]:
        """Every replica of every Spark-scored variant re-resolves its alias."""
        return {name: await handle.broadcast("reload").results_async() for name, handle in self.handles.items()}


async def _awaited(awaitable: Any) -> Any:
    """A Serve response (awaitable, not a coroutine) as a coroutine, for ``asyncio.wait_for``."""
    return await awaitable
