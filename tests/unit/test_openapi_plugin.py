"""The OpenAPI plugin's mapping rules, on a small proto of its own run through protoc the
way `fulfillment codegen` runs it: scalars and well-known types as the transcoder prints
them, field behaviours, comments, and where each request field comes from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from grpc_tools import protoc
from openapi_spec_validator import validate

from services.common import codegen

pytestmark = pytest.mark.unit

SHELF_PROTO = """
syntax = "proto3";

package probe.v1;

import "google/api/annotations.proto";
import "google/api/field_behavior.proto";
import "google/api/field_info.proto";
import "google/protobuf/timestamp.proto";

// Shelves of books.
service ShelfService {
  // Finds the books of a shelf.
  rpc SearchBooks(SearchBooksRequest) returns (SearchBooksResponse) {
    option (google.api.http) = {get: "/v1/shelves/{shelf_id}/books"};
  }

  rpc AddBook(AddBookRequest) returns (Book) {
    option (google.api.http) = {
      post: "/v1/shelves/{shelf_id}/books"
      body: "*"
    };
  }

  rpc RenameShelf(RenameShelfRequest) returns (Shelf) {
    option (google.api.http) = {
      patch: "/v1/{name=shelves/*}"
      body: "shelf"
    };
  }

  rpc FollowBook(FollowBookRequest) returns (stream Book) {
    option (google.api.http) = {get: "/v1/books/{book_id}:follow"};
  }

  rpc UploadBooks(stream Book) returns (stream Book) {
    option (google.api.http) = {
      post: "/v1/books:upload"
      body: "*"
    };
  }
}

// Not routed: no binding.
service BackOffice {
  rpc Purge(Secret) returns (Secret);
}

message Book {
  enum Genre {
    GENRE_UNSPECIFIED = 0;
    // Made up.
    FICTION = 1;
    POETRY = 2;
  }

  // Assigned by the server.
  int64 book_id = 1 [(google.api.field_behavior) = OUTPUT_ONLY];
  string title = 2 [(google.api.field_behavior) = REQUIRED];
  Genre genre = 3;
  google.protobuf.Timestamp publish_time = 4;
  uint32 pages = 5;
  repeated string tags = 6;
  map<string, int64> ratings = 7;
  uint64 isbn = 8;
  double weight = 9;
  bytes cover = 10;
  optional bool signed = 11;
  string edition_id = 12 [(google.api.field_info).format = UUID4];
  repeated string authors = 13 [(google.api.field_behavior) = REQUIRED];
}

message Range {
  int32 min = 1;
  int32 max = 2;
}

message Filter {
  Book.Genre genre = 1;
  Range pages = 2;
  google.protobuf.Timestamp published_after = 3;
  // Only for the server.
  string cursor = 4 [(google.api.field_behavior) = OUTPUT_ONLY];
}

message SearchBooksRequest {
  int64 shelf_id = 1;
  Filter filter = 2;
  repeated int64 book_ids = 3;
  int32 page_size = 4 [(google.api.field_behavior) = REQUIRED];
  repeated Book examples = 5;
}

message SearchBooksResponse {
  repeated Book books = 1;
}

message AddBookRequest {
  int64 shelf_id = 1 [(google.api.field_behavior) = REQUIRED];
  Book book = 2 [(google.api.field_behavior) = REQUIRED];
  string note = 3;
}

message Shelf {
  string name = 1;
  string theme = 2;
}

message RenameShelfRequest {
  string name = 1;
  Shelf shelf = 2;
  bool validate_only = 3;
}

message FollowBookRequest {
  int64 book_id = 1;
}

message Secret {
  string code = 1;
}
"""


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("openapi")
    (root / "probe" / "v1").mkdir(parents=True)
    (root / "probe" / "v1" / "shelf.proto").write_text(SHELF_PROTO)
    out = root / "out"
    out.mkdir()
    includes = [f"-I{d}" for d in [str(root), *codegen.include_dirs()]]
    code = protoc.main([
        "grpc_tools.protoc", *includes,
        f"--plugin=protoc-gen-openapi={codegen.openapi_plugin(root)}", f"--openapi_out={out}",
        "probe/v1/shelf.proto",
    ])
    assert code == 0
    return json.loads((out / "openapi.json").read_text())


def schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    return document["components"]["schemas"][name]


def parameters(document: dict[str, Any], path: str, verb: str) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in document["paths"][path][verb].get("parameters", [])}


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_64_bit_integers_are_strings_that_also_accept_numbers(document: dict[str, Any]) -> None:
    book = schema(document, "probe.v1.Book")["properties"]
    assert book["book_id"]["type"] == ["string", "integer"]
    assert book["book_id"]["format"] == "int64"
    assert book["book_id"]["pattern"] == "^-?[0-9]{1,19}$"
    assert (book["book_id"]["minimum"], book["book_id"]["maximum"]) == (-(2**63), 2**63 - 1)
    assert book["isbn"]["format"] == "uint64" and book["isbn"]["minimum"] == 0
    assert book["ratings"]["type"] == "object"
    assert book["ratings"]["additionalProperties"]["type"] == ["string", "integer"]


def test_32_bit_integers_floats_bools_and_bytes_keep_their_json_types(document: dict[str, Any]) -> None:
    book = schema(document, "probe.v1.Book")["properties"]
    assert book["pages"] == {"type": "integer", "format": "uint32", "minimum": 0, "maximum": 2**32 - 1}
    assert {"type": "number"} in book["weight"]["oneOf"]
    assert book["signed"] == {"type": "boolean"}
    assert book["cover"]["format"] == "byte"
    assert book["tags"] == {"type": "array", "items": {"type": "string"}}


def test_enums_are_their_value_names_with_the_values_comments(document: dict[str, Any]) -> None:
    genre = schema(document, "probe.v1.Book.Genre")
    assert genre["type"] == "string"
    assert genre["enum"] == ["GENRE_UNSPECIFIED", "FICTION", "POETRY"]
    assert "- `FICTION`: Made up." in genre["description"]
    assert schema(document, "probe.v1.Book")["properties"]["genre"] == {
        "$ref": "#/components/schemas/probe.v1.Book.Genre"
    }


def test_timestamps_are_rfc_3339_strings(document: dict[str, Any]) -> None:
    publish_time = schema(document, "probe.v1.Book")["properties"]["publish_time"]
    assert publish_time["type"] == "string" and publish_time["format"] == "date-time"


def test_field_behaviours_become_read_only_and_required(document: dict[str, Any]) -> None:
    book = schema(document, "probe.v1.Book")
    assert book["properties"]["book_id"]["readOnly"] is True
    assert "readOnly" not in book["properties"]["title"]
    assert book["required"] == ["title", "authors"]


def test_required_strings_and_lists_must_not_be_empty(document: dict[str, Any]) -> None:
    """In proto3 an empty string or list is an unset field, which REQUIRED rules out."""
    book = schema(document, "probe.v1.Book")
    assert book["properties"]["title"] == {"type": "string", "minLength": 1}
    assert book["properties"]["authors"]["minItems"] == 1
    assert book["required"] == ["title", "authors"]


def test_field_info_formats_become_json_schema_formats(document: dict[str, Any]) -> None:
    assert schema(document, "probe.v1.Book")["properties"]["edition_id"] == {
        "type": "string", "format": "uuid",
    }


def test_comments_become_descriptions(document: dict[str, Any]) -> None:
    book_id = schema(document, "probe.v1.Book")["properties"]["book_id"]
    assert book_id["description"] == "Assigned by the server."
    assert document["tags"][-1] == {"name": "ShelfService", "description": "Shelves of books."}
    search = document["paths"]["/v1/shelves/{shelf_id}/books"]["get"]
    assert search["description"] == "Finds the books of a shelf."
    assert search["operationId"] == "ShelfService_SearchBooks"
    assert search["tags"] == ["ShelfService"]


def test_path_fields_are_path_parameters_and_the_rest_query_parameters(document: dict[str, Any]) -> None:
    params = parameters(document, "/v1/shelves/{shelf_id}/books", "get")
    assert params["shelf_id"]["in"] == "path" and params["shelf_id"]["required"] is True
    assert params["shelf_id"]["schema"]["type"] == ["string", "integer"]
    assert params["page_size"] == {
        "name": "page_size", "in": "query", "required": True,
        "schema": {"type": "integer", "format": "int32", "minimum": -(2**31), "maximum": 2**31 - 1},
    }
    assert params["book_ids"]["schema"]["type"] == "array"
    assert params["book_ids"]["explode"] is True


def test_nested_query_fields_have_dotted_names_and_enums_stay_enums(document: dict[str, Any]) -> None:
    params = parameters(document, "/v1/shelves/{shelf_id}/books", "get")
    assert sorted(params) == [
        "book_ids", "filter.genre", "filter.pages.max", "filter.pages.min", "filter.published_after",
        "page_size", "shelf_id",
    ], "repeated messages and output-only fields have no query form"
    assert params["filter.genre"]["schema"] == {"$ref": "#/components/schemas/probe.v1.Book.Genre"}
    assert params["filter.published_after"]["schema"]["format"] == "date-time"
    assert "required" not in params["filter.pages.min"]


def test_a_body_star_takes_every_field_the_path_does_not(document: dict[str, Any]) -> None:
    add = document["paths"]["/v1/shelves/{shelf_id}/books"]["post"]
    body = add["requestBody"]["content"]["application/json"]["schema"]
    assert list(body["properties"]) == ["book", "note"]
    assert body["required"] == ["book"]
    assert list(parameters(document, "/v1/shelves/{shelf_id}/books", "post")) == ["shelf_id"]


def test_a_body_field_takes_that_field_and_the_rest_are_query_parameters(document: dict[str, Any]) -> None:
    rename = document["paths"]["/v1/{name}"]["patch"]
    body = rename["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/probe.v1.Shelf"}
    assert {p["name"]: p["in"] for p in rename["parameters"]} == {"name": "path", "validate_only": "query"}


def test_streams_are_json_arrays(document: dict[str, Any]) -> None:
    follow = document["paths"]["/v1/books/{book_id}:follow"]["get"]
    reply = follow["responses"]["200"]["content"]["application/json"]["schema"]
    assert reply == {"type": "array", "items": {"$ref": "#/components/schemas/probe.v1.Book"}}
    assert "JSON array" in follow["description"]
    upload = document["paths"]["/v1/books:upload"]["post"]
    assert upload["requestBody"]["content"]["application/json"]["schema"]["type"] == "array"


def test_errors_are_documented_where_they_apply(document: dict[str, Any]) -> None:
    search = document["paths"]["/v1/shelves/{shelf_id}/books"]["get"]["responses"]
    upload = document["paths"]["/v1/books:upload"]["post"]["responses"]
    assert sorted(search) == ["200", "400", "401", "403", "404", "429", "default"]
    assert sorted(upload) == ["200", "400", "401", "403", "413", "429", "default"]
    assert search["401"] == {"$ref": "#/components/responses/Unauthenticated"}
    error = schema(document, "Error")
    assert error["required"] == ["code", "message", "details"]


def test_unrouted_services_and_their_messages_are_left_out(document: dict[str, Any]) -> None:
    text = json.dumps(document)
    assert "BackOffice" not in text and "Purge" not in text
    assert "probe.v1.Secret" not in document["components"]["schemas"]


def test_the_bearer_scheme_guards_every_route_but_the_document(document: dict[str, Any]) -> None:
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    assert document["security"] == [{"bearerAuth": []}]
    assert document["paths"]["/openapi.json"]["get"]["security"] == []


def test_the_output_is_the_same_every_time(tmp_path: Path, document: dict[str, Any]) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    codegen.generate_openapi(first)
    codegen.generate_openapi(second)
    assert first.read_bytes() == second.read_bytes()
