"""Loaded by `schemathesis run` (SCHEMATHESIS_HOOKS) in test_serve_app.py: each accepted `POST /admin/weights`
is undone once schemathesis has checked its answer.

New weights change which variants a routed request may reach, and with them the document of the moment (a
routed /predict body must suit every routed variant). Schemathesis reads the document once: undoing each
change lets /admin/weights be tested in the same pass as every other route, each held to the document of
the configured weights.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import httpx
import schemathesis

# Longer than the app's refresh_seconds (0.2 s in the test): a replica that read the new weights in the
# moment before they were undone has read the configured ones again by then.
_SETTLE_SECONDS = 0.6


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    if case.path != "/admin/weights" or response.status_code != 200:
        return
    base, token = os.environ["PIPELINE_TEST_APP"], os.environ["PIPELINE_TEST_TOKEN"]
    weights = json.loads(os.environ["PIPELINE_TEST_WEIGHTS"])
    restored = httpx.post(
        f"{base}/admin/weights",
        json={"weights": weights},
        timeout=30,
        headers={"Authorization": f"Bearer {token}"},
    )
    restored.raise_for_status()
    with open(os.environ["PIPELINE_TEST_UNDONE"], "a") as undone:  # the test counts them
        undone.write(json.dumps(response.json()) + "\n")
    time.sleep(_SETTLE_SECONDS)
