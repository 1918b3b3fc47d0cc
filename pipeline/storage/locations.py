"""Data locations as users write them: a local path or an object-store URI (``s3://bucket/key``). Pure: no
filesystem is touched here (``pipeline.storage`` resolves a location to one), so the rules are tested in
milliseconds and serving can check a request's path without any engine."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# Served by pyarrow's filesystems and delta-rs under the same URI; only s3:// is tested against a real API.
OBJECT_STORE_SCHEMES = ("s3", "gs", "abfs", "abfss")
_URI = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)$")
# S3's rule for bucket names (the strictest of the three stores'): 3-63 lowercase letters, digits, '.' and
# '-', starting and ending with a letter or digit.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class LocationError(ValueError):
    """A location that is not one, or one outside the allowed roots: the message is one line naming the field,
    the value and the rule."""


@dataclass(frozen=True)
class Location:
    """Where data lives: ``scheme`` is ``file`` for a local path (``key`` is then absolute), else the object
    store's (``bucket`` and ``key``, the key without a leading or trailing slash, empty for the bucket)."""

    scheme: str
    bucket: str
    key: str

    @property
    def is_local(self) -> bool:
        return self.scheme == "file"

    @property
    def uri(self) -> str:
        """As a user writes it: the local path, or ``scheme://bucket/key``."""
        if self.is_local:
            return self.key
        return f"{self.scheme}://{self.bucket}/{self.key}" if self.key else f"{self.scheme}://{self.bucket}"

    def join(self, *parts: str) -> Location:
        """The location ``parts`` below this one (each part a relative path with no '..')."""
        for part in parts:
            if part.startswith("/") or ".." in PurePosixPath(part).parts:
                raise LocationError(f"{part!r}: must be a relative path with no '..' below {self.uri}")
        if self.is_local:
            return Location("file", "", str(Path(self.key, *parts)))
        key = "/".join(piece.strip("/") for piece in (self.key, *parts) if piece.strip("/"))
        return Location(self.scheme, self.bucket, key)

    def contains(self, other: Location) -> bool:
        """Whether ``other`` is this location or below it, segment by segment: ``s3://b/data-old`` is not below
        ``s3://b/data``."""
        if (other.scheme, other.bucket) != (self.scheme, self.bucket):
            return False
        if self.is_local:
            return Path(other.key).is_relative_to(self.key)
        return not self.key or other.key == self.key or other.key.startswith(f"{self.key}/")

    def __str__(self) -> str:
        return self.uri


def is_object_store(text: str | Path) -> bool:
    """Whether ``text`` names an object-store location (by its scheme), without checking the rest."""
    match = _URI.match(str(text))
    return match is not None and match["scheme"].lower() in OBJECT_STORE_SCHEMES


def parse_location(text: str | Path, field: str, base_dir: Path | None = None) -> Location:
    """``text`` as a location. A relative local path resolves against ``base_dir`` (else the working
    directory); an object-store URI must name a bucket and may not hold '.' or '..' segments (a store has no
    such folders: such a key only hides where it points). ``field`` names the setting in the error."""
    raw = str(text)
    if not raw or "\x00" in raw:
        raise LocationError(f"{field} = {raw!r}: not a location (a path or scheme://bucket/key)")
    match = _URI.match(raw)
    if match is None:
        path = Path(raw).expanduser()
        return Location("file", "", str(path if path.is_absolute() else (base_dir or Path.cwd()) / path))
    scheme, rest = match["scheme"].lower(), match["rest"]
    if scheme == "file":
        return parse_location(rest, field, base_dir)
    if scheme not in OBJECT_STORE_SCHEMES:
        known = ", ".join(f"{name}://" for name in OBJECT_STORE_SCHEMES)
        raise LocationError(f"{field} = {raw!r}: unknown scheme {scheme}:// (a local path, or one of {known})")
    bucket, _, key = rest.partition("/")
    if not _BUCKET.match(bucket):
        raise LocationError(
            f"{field} = {raw!r}: {bucket!r} is not a bucket name (3-63 lowercase letters, digits, '.' and '-')"
        )
    segments = [segment for segment in key.split("/") if segment]
    if any(segment in (".", "..") for segment in segments):
        raise LocationError(f"{field} = {raw!r}: '.' and '..' are not allowed in an object key")
    return Location(scheme, bucket, "/".join(segments))


def confine_location(requested: str, roots: Sequence[str | Path], field: str = "data_path") -> Location:
    """``requested`` (a relative path is taken below the first root) returned only if it lies inside one of
    ``roots``: a local path after resolving symlinks and '..', an object key segment by segment."""
    if not requested or "\x00" in requested:
        raise LocationError(f"{field} = {requested!r}: not a location (a path or scheme://bucket/key)")
    if not roots:
        raise LocationError(f"{field}: no data roots are configured (serving.data_roots)")
    allowed = [_resolved(parse_location(root, "serving.data_roots")) for root in roots]
    first = allowed[0]
    if is_object_store(requested) or Path(requested).is_absolute():
        location = parse_location(requested, field)
    elif first.is_local:
        location = Location("file", "", str(Path(first.key, requested)))
    elif ".." in PurePosixPath(requested).parts:
        raise LocationError(f"{field} = {requested!r}: '..' is not allowed below an object-store root ({first})")
    else:
        location = first.join(requested)
    location = _resolved(location)
    if not any(root.contains(location) for root in allowed):
        names = ", ".join(root.uri for root in allowed)
        raise LocationError(f"{field} = {requested!r} resolves to {location}, outside the data roots ({names})")
    return location


def _resolved(location: Location) -> Location:
    """A local location with its symlinks and '..' resolved; an object-store one as it is."""
    return Location("file", "", str(Path(location.key).resolve())) if location.is_local else location
