"""The explorer's request vocabulary: the API error, bounded JSON bodies, the field validators and the
generation options every endpoint shares, and images sent back as data URLs. Every message names the field
and its range, for people (no Python reprs)."""

from __future__ import annotations

import base64
import json
import re
from typing import Any, BinaryIO

from flowergan.bounds import MAX_INT_DIGITS
from flowergan.inference.api import NOISE_MODES
from flowergan.inference.images import png_bytes
from flowergan.inference.latents import MAX_SEED
from flowergan.web.limits import Limits

__all__ = ["ApiError", "parse_body", "read_json", "words", "check_keys", "int_field", "float_field",
           "choice_field", "bool_field", "seed_list", "walk_fields", "class_field", "generation_options",
           "data_url", "bytes_url"]


class ApiError(Exception):
    """A request the explorer refuses: answered with HTTP `status` and {"error": message}."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


# ---- bodies --------------------------------------------------------------------------------------
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")
_LENGTH = re.compile(rf"\d{{1,{MAX_INT_DIGITS}}}", re.ASCII)


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ApiError(400, f"a number with {len(text)} digits: integers have at most {MAX_INT_DIGITS} "
                            f"digits here")
    return int(text)


def _json_float(text: str) -> float:
    v = float(text)
    if v in (float("inf"), float("-inf")):
        raise ApiError(400, f"the number {text[:30]} is too large (it is infinite as a float)")
    return v


def _json_constant(name: str):
    raise ApiError(400, f"{name} is not allowed: numbers must be finite")


def parse_body(raw: bytes, max_depth: int) -> Any:
    """A request body as JSON, refused (ApiError 400) when not UTF-8 JSON, nested deeper than `max_depth`,
    or holding over-long integers, NaN or infinities (all checked without recursion or big allocations)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ApiError(400, f"the request body is not UTF-8 text ({e.reason} at byte {e.start})") from None
    depth = 0
    for b in _BRACKETS.findall(_STRINGS.sub("", text)):
        depth += 1 if b in "[{" else -1
        if depth > max_depth:
            raise ApiError(400, f"the request body nests arrays/objects more than {max_depth} deep")
    try:
        return json.loads(text or "{}", parse_int=_json_int, parse_float=_json_float,
                          parse_constant=_json_constant)
    except (ValueError, RecursionError) as e:
        raise ApiError(400, f"the request body is not valid JSON ({str(e)[:120]})") from None


def read_json(headers, rfile: BinaryIO, limit: int, max_depth: int, timeout_s: float) -> dict:
    """The JSON object a request sends: one Content-Length of at most `limit` bytes (no chunked bodies), read
    in full before anything else is checked (so an answer never resets the client; a client that stops
    sending times out after `timeout_s`), then Content-Type application/json and `parse_body`."""
    if headers.get("Transfer-Encoding"):
        raise ApiError(411, "chunked request bodies are not accepted; send a Content-Length header")
    lengths = [v.strip() for v in headers.get_all("Content-Length") or []]
    if not lengths:
        raise ApiError(411, "a Content-Length header is required")
    if len(set(lengths)) != 1 or not _LENGTH.fullmatch(lengths[0]):
        raise ApiError(400, f"Content-Length {', '.join(lengths)[:60]!r}: must be one whole number of bytes "
                            f"(at most {limit})")
    n = int(lengths[0])
    if n > limit:
        raise ApiError(413, f"request body of {n} bytes is larger than the limit of {limit} bytes")
    try:
        raw = rfile.read(n)
    except OSError:  # the client stopped sending: timed out
        raw = None
    if raw is None or len(raw) != n:
        raise ApiError(400, f"the request body is shorter than its Content-Length of {n} bytes (nothing more "
                            f"arrived within {timeout_s:g} s)")
    ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise ApiError(415, "send the request body as JSON with Content-Type: application/json")
    body = parse_body(raw, max_depth)
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body


# ---- fields --------------------------------------------------------------------------------------
def words(items) -> str:
    """['a', 'b'] -> "a, b" (messages are read by people: no Python list reprs)."""
    return ", ".join(str(i) for i in items)


def check_keys(body: dict, allowed: set[str]) -> None:
    """Refuse fields outside `allowed`, naming them and the allowed ones."""
    unknown = sorted(set(body) - allowed)
    if unknown:
        shown = words(json.dumps(k)[:40] for k in unknown)
        raise ApiError(400, f"unknown field(s) {shown}; the allowed fields are {words(sorted(allowed))}")


def int_field(body: dict, key: str, lo: int, hi: int, default: Any = ...) -> int:
    """body[key], an integer in [lo, hi]; missing or null gives `default` (required when it is not given)."""
    if key not in body or body[key] is None:
        if default is ...:
            raise ApiError(400, f"{key}: required, an integer in [{lo}, {hi}]")
        return default
    v = body[key]
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ApiError(400, f"{key}: must be an integer in [{lo}, {hi}], got {json.dumps(v)}")
    return v


def float_field(body: dict, key: str, lo: float, hi: float, default: float) -> float:
    """body[key], a number in [lo, hi]; missing or null gives `default`."""
    v = body.get(key, default)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
        raise ApiError(400, f"{key}: must be a number in [{lo:g}, {hi:g}], got {json.dumps(v)}")
    return float(v)


def choice_field(body: dict, key: str, choices: tuple[str, ...], default: str) -> str:
    """body[key], one of `choices`; missing gives `default`."""
    v = body.get(key, default)
    if v not in choices:
        raise ApiError(400, f"{key}: must be one of {words(choices)}, got {json.dumps(v)[:40]}")
    return v


def bool_field(body: dict, key: str, default: bool = False) -> bool:
    """body[key], true or false; missing gives `default`."""
    v = body.get(key, default)
    if not isinstance(v, bool):
        raise ApiError(400, f"{key}: must be true or false, got {json.dumps(v)[:20]}")
    return v


def seed_list(body: dict, key: str, lo_count: int, hi_count: int) -> list[int]:
    """body[key], a list of `lo_count` to `hi_count` seeds in [0, MAX_SEED]."""
    v = body.get(key)
    if not isinstance(v, list) or not lo_count <= len(v) <= hi_count:
        raise ApiError(400, f"{key}: must be a list of {lo_count} to {hi_count} integers in [0, {MAX_SEED}], "
                            f"got {json.dumps(v)[:80]}")
    for s in v:
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SEED:
            raise ApiError(400, f"{key}: every seed must be an integer in [0, {MAX_SEED}], got "
                                f"{json.dumps(s)}")
    return v


def walk_fields(body: dict, max_seeds: int, max_frames: int) -> tuple[list[int], int, bool, int]:
    """A walk through seeds: (seeds, frames per transition, loop, total frames), the total at most
    `max_frames`."""
    seeds = seed_list(body, "seeds", 2, max_seeds)
    frames = int_field(body, "frames", 1, max_frames, 8)
    loop = bool_field(body, "loop")
    total = (len(seeds) if loop else len(seeds) - 1) * frames + 1
    if total > max_frames:
        raise ApiError(400, f"frames: {frames} per transition over {len(seeds)} seeds makes {total} frames; "
                            f"at most {max_frames} are allowed")
    return seeds, frames, loop, total


def generation_options(body: dict, pipe, limits: Limits) -> dict:
    """The fields every generation request shares (psi, noise_mode, cutoff, class_idx) as keyword arguments
    of the Pipeline (`pipe`: its num_ws and c_dim)."""
    out = {"truncation_psi": float_field(body, "psi", limits.psi_min, limits.psi_max, 1.0),
           "noise_mode": choice_field(body, "noise_mode", NOISE_MODES, "const"),
           "truncation_cutoff": int_field(body, "cutoff", 0, pipe.num_ws, None)}
    class_idx = class_field(body, pipe.c_dim)
    if class_idx is not None:  # a conditional model
        out["class_idx"] = class_idx
    return out


def class_field(body: dict, c_dim: int) -> int | None:
    """body["class_idx"]: required in [0, c_dim - 1] for a conditional model, absent (or null) otherwise."""
    if c_dim > 0:
        return int_field(body, "class_idx", 0, c_dim - 1)
    if body.get("class_idx") is not None:
        raise ApiError(400, "class_idx: this model is unconditional; leave class_idx out (or null)")
    return None


# ---- answers -------------------------------------------------------------------------------------
def bytes_url(mime: str, data: bytes) -> str:
    """`data` as a data URL of type `mime`."""
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def data_url(image) -> str:
    """An image ([H, W, C] uint8) as a PNG data URL."""
    return bytes_url("image/png", png_bytes(image))
