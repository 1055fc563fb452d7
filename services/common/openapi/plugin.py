"""protoc-gen-openapi: reads a CodeGeneratorRequest on stdin, writes a
CodeGeneratorResponse holding one file, openapi.json, on stdout.

protoc runs it as `--plugin=protoc-gen-openapi=<executable> --openapi_out=<dir>`;
services/common/codegen.py writes that executable (a two-line shell script starting this
module with the current interpreter)."""

from __future__ import annotations

import sys

from google.protobuf.compiler import plugin_pb2

from services.common.openapi.document import build_document, render

OUTPUT_NAME = "openapi.json"


def generate(request: plugin_pb2.CodeGeneratorRequest) -> plugin_pb2.CodeGeneratorResponse:
    response = plugin_pb2.CodeGeneratorResponse(
        supported_features=plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    )
    try:
        document = build_document(request.proto_file, request.file_to_generate)
    except (KeyError, ValueError) as exc:
        response.error = f"protoc-gen-openapi: {exc}"
        return response
    response.file.add(name=OUTPUT_NAME, content=render(document))
    return response


def main() -> None:
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    sys.stdout.buffer.write(generate(request).SerializeToString())


if __name__ == "__main__":
    main()
