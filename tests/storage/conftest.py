"""The storage tests' buckets: on the session's S3 server (``tests/conftest.py``: ``s3_server``, ``bucket``),
with this process's environment pointing at it as a user's would."""

from __future__ import annotations

from tests.conftest import S3_SECRET

SECRET = S3_SECRET
