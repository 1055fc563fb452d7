"""The pages the gateway serves itself, on its own port and without a token: the OpenAPI
document (/openapi.json), Swagger UI (/docs) and the operator console (/console/).

Every file under gateway/static becomes one Envoy route with a direct response whose body
Envoy reads from the file when it loads its config, so no other process serves them and
nothing is read from disk per request. The routes are computed here at render time, with
each file's content type from its extension, one security policy for every page, and a
cache policy. Envoy must be restarted to pick up changed files (and the config rendered
again, `render-deploy` for compose and Kubernetes, when files are added or removed).
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from services.gateway_security import yaml_string

STATIC_DIR = Path(__file__).resolve().parents[1] / "gateway" / "static"
# Where compose and Kubernetes put gateway/static for the Envoy container (deploy/README.md).
CONTAINER_STATIC_DIR = "/srv/fulfillment/static"
# Envoy's cap on one direct response body (RouteConfiguration
# max_direct_response_body_size_bytes); a larger file is refused at render time.
MAX_STATIC_FILE_BYTES = 4 * 1024 * 1024
# The per-route name of the compressor filter in gateway/envoy.yaml.tmpl: off by default,
# on for these routes only (a gzip'd API stream would wait for whole blocks).
COMPRESSOR_FILTER = "static_gzip"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".webmanifest": "application/manifest+json",
    ".csv": "text/csv; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    "": "text/plain; charset=utf-8",  # LICENSE, NOTICE, SHA256SUMS
}
UNKNOWN_CONTENT_TYPE = "application/octet-stream"

# Scripts, styles, images, fonts and API calls from this origin only (Swagger UI included:
# React sets its styles through the DOM, which the policy allows); no inline script or
# style, no plugins, no framing, no <base> or form posts elsewhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# The vendored Swagger UI changes only with its pinned version; our own files at any deploy
# (no validators on direct responses, so no-cache means fetched again).
_VENDORED_PREFIX = "docs/swagger-ui/"
VENDORED_CACHE_CONTROL = "public, max-age=3600"
OWN_CACHE_CONTROL = "no-cache"
# A directory with an index.html answers at "/dir/"; "/dir" redirects there, except for
# these, which the contract serves at "/dir" itself (their index.html uses absolute paths).
SERVED_WITHOUT_SLASH = frozenset({"docs"})


@dataclass(frozen=True)
class StaticFile:
    relative: str  # "docs/index.html", POSIX
    size: int

    @property
    def content_type(self) -> str:
        suffix = PurePosixPath(self.relative).suffix.lower()
        return CONTENT_TYPES.get(suffix, UNKNOWN_CONTENT_TYPE)

    @property
    def cache_control(self) -> str:
        return VENDORED_CACHE_CONTROL if self.relative.startswith(_VENDORED_PREFIX) else OWN_CACHE_CONTROL

    @property
    def url_paths(self) -> list[str]:
        """Every path this file answers at: its own, and its directory's for an index.html."""
        own = "/" + urllib.parse.quote(self.relative)
        paths = [own]
        parent = PurePosixPath(self.relative).parent
        if PurePosixPath(self.relative).name == "index.html":
            directory = "/" if str(parent) == "." else f"/{urllib.parse.quote(str(parent))}/"
            paths.append(directory)
            if str(parent) in SERVED_WITHOUT_SLASH:
                paths.append(directory.rstrip("/"))
        return paths


@dataclass(frozen=True)
class Redirect:
    path: str
    location: str


class StaticFileTooLarge(ValueError):
    pass


def static_files(root: Path = STATIC_DIR) -> list[StaticFile]:
    """Every file under root, sorted; hidden files and directories (.gitkeep) are left out.
    No root (a checkout without the pages): no routes."""
    if not root.is_dir():
        return []
    files = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        size = path.stat().st_size
        if size > MAX_STATIC_FILE_BYTES:
            raise StaticFileTooLarge(
                f"{path} is {size} bytes; Envoy serves static files of at most "
                f"{MAX_STATIC_FILE_BYTES} (services/gateway_static.py)"
            )
        files.append(StaticFile(relative.as_posix(), size))
    return files


def directory_redirects(files: list[StaticFile]) -> list[Redirect]:
    """"/console" -> "/console/" for each directory that has an index.html."""
    redirects = []
    for file in files:
        parent = PurePosixPath(file.relative).parent
        if PurePosixPath(file.relative).name != "index.html" or str(parent) in (".", *SERVED_WITHOUT_SLASH):
            continue
        directory = "/" + urllib.parse.quote(str(parent))
        redirects.append(Redirect(directory, directory + "/"))
    return redirects


def static_routes_block(files: list[StaticFile], served_from: str) -> str:
    """The routes of gateway/envoy.yaml.tmpl's ${static_routes} line: GET and HEAD of each
    path answered from the file under served_from (where Envoy finds gateway/static)."""
    lines: list[str] = []
    read_methods = f"&static_methods [{_READ_METHODS}]"
    compressed = f"&static_gzip {{ {_COMPRESSED} }}"
    for file in files:
        filename = f"{served_from.rstrip('/')}/{file.relative}"
        headers = [
            ("content-type", file.content_type),
            ("x-content-type-options", "nosniff"),
            ("content-security-policy", CONTENT_SECURITY_POLICY),
            ("cache-control", file.cache_control),
            ("referrer-policy", "no-referrer"),
        ]
        for path in file.url_paths:
            lines += [
                f"- match: {{ path: {yaml_string(path)}, headers: {read_methods} }}",
                f"  direct_response: {{ status: 200, body: {{ filename: {yaml_string(filename)} }} }}",
                "  response_headers_to_add:",
                *_headers(headers),
                f"  typed_per_filter_config: {compressed}",
            ]
            read_methods, compressed = "*static_methods", "*static_gzip"
    for redirect in directory_redirects(files):
        lines += [
            f"- match: {{ path: {yaml_string(redirect.path)}, headers: {read_methods} }}",
            # A relative Location, right behind any proxy or TLS terminator.
            "  direct_response: { status: 301 }",
            "  response_headers_to_add:",
            *_headers([("location", redirect.location)]),
        ]
    return "\n".join(lines)


_READ_METHODS = '{ name: ":method", string_match: { safe_regex: { regex: "GET|HEAD" } } }'
_COMPRESSED = (
    f"{COMPRESSOR_FILTER}: {{ \"@type\": type.googleapis.com/envoy.config.route.v3.FilterConfig, "
    "disabled: false, config: { \"@type\": "
    "type.googleapis.com/envoy.extensions.filters.http.compressor.v3.CompressorPerRoute, "
    "overrides: { response_direction_config: {} } } }"
)


def _headers(headers: list[tuple[str, str]]) -> list[str]:
    return [
        f"    - {{ header: {{ key: {key}, value: {yaml_string(value)} }}, "
        "append_action: OVERWRITE_IF_EXISTS_OR_ADD }"
        for key, value in headers
    ]
