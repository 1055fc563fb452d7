"""Generate from protos/ the protobuf/gRPC stubs (with .pyi), Envoy's descriptor set and
the OpenAPI document (our protoc plugin, services/common/openapi).

All three are committed; tests/unit/test_codegen_fresh.py regenerates them into a
temporary directory and fails when the committed copies are stale.
Run: `uv run fulfillment codegen`.
"""

from __future__ import annotations

import re
import shlex
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO_ROOT / "protos"
STUBS_PACKAGE = "services.common.proto"
STUBS_DIR = REPO_ROOT / "services" / "common" / "proto"
DESCRIPTOR_SET = REPO_ROOT / "gateway" / "fulfillment.pb"
# Served by the gateway at /openapi.json.
OPENAPI_DOCUMENT = REPO_ROOT / "gateway" / "static" / "openapi.json"

_IMPORT_RE = re.compile(r"^(from|import) fulfillment(\.| )", re.MULTILINE)


def proto_files() -> list[Path]:
    return sorted(PROTO_ROOT.rglob("*.proto"))


def include_dirs() -> list[str]:
    import google.api  # googleapis-common-protos ships google/api and google/rpc protos

    googleapis = Path(google.api.__path__[0]).parent.parent
    well_known = resources.files("grpc_tools") / "_proto"
    return [str(PROTO_ROOT), str(googleapis), str(well_known)]


# Envoy turns grpc-status-details-bin into a JSON error body only if it can resolve every
# detail type, so the descriptor set carries the error detail messages we send.
DESCRIPTOR_EXTRAS = ["google/rpc/error_details.proto"]


def _run_protoc(args: list[str], extra_files: list[str] | None = None) -> None:
    from grpc_tools import protoc

    includes = [f"-I{d}" for d in include_dirs()]
    files = [str(p.relative_to(PROTO_ROOT)) for p in proto_files()]
    code = protoc.main(["grpc_tools.protoc", *includes, *args, *files, *(extra_files or [])])
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")


def _rewrite_imports(out_dir: Path) -> None:
    """protoc emits `from fulfillment.x import y`; our stubs live under services.common.proto."""
    for path in out_dir.rglob("*.py*"):
        text = path.read_text()
        new = _IMPORT_RE.sub(lambda m: f"{m.group(1)} {STUBS_PACKAGE}.fulfillment{m.group(2)}", text)
        path.write_text(new)


def _add_init_files(out_dir: Path) -> None:
    for directory in [out_dir, *[p for p in out_dir.rglob("*") if p.is_dir()]]:
        (directory / "__init__.py").touch()


def openapi_plugin(directory: Path) -> Path:
    """protoc runs a plugin as an executable with no arguments: a shell script that starts
    our plugin module with this interpreter, on this checkout."""
    script = directory / "protoc-gen-openapi"
    script.write_text(
        "#!/bin/sh\n"
        f"PYTHONPATH={shlex.quote(str(REPO_ROOT))}${{PYTHONPATH:+:$PYTHONPATH}} "
        f"exec {shlex.quote(sys.executable)} -m services.common.openapi.plugin\n"
    )
    script.chmod(0o755)
    return script


def generate_openapi(document: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        out_dir = tmp_dir / "out"
        out_dir.mkdir()
        _run_protoc(
            [f"--plugin=protoc-gen-openapi={openapi_plugin(tmp_dir)}", f"--openapi_out={out_dir}"]
        )
        document.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(out_dir / "openapi.json"), document)


def generate(stubs_dir: Path, descriptor_set: Path, openapi_document: Path | None = None) -> None:
    if openapi_document is not None:
        generate_openapi(openapi_document)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        _run_protoc(
            [
                f"--python_out={tmp_dir}",
                f"--pyi_out={tmp_dir}",
                f"--grpc_python_out={tmp_dir}",
            ]
        )
        _run_protoc(
            [f"--descriptor_set_out={tmp_dir / 'fulfillment.pb'}", "--include_imports"],
            DESCRIPTOR_EXTRAS,
        )
        descriptor_set.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(tmp_dir / "fulfillment.pb"), descriptor_set)
        _rewrite_imports(tmp_dir)
        _add_init_files(tmp_dir)
        if stubs_dir.exists():
            shutil.rmtree(stubs_dir)
        shutil.copytree(tmp_dir, stubs_dir)


def main() -> None:
    generate(STUBS_DIR, DESCRIPTOR_SET, OPENAPI_DOCUMENT)
    written = [STUBS_DIR, DESCRIPTOR_SET, OPENAPI_DOCUMENT]
    print("wrote " + ", ".join(str(path.relative_to(REPO_ROOT)) for path in written))


if __name__ == "__main__":
    main()
