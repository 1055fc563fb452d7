"""The error replies of the gateway, as it really sends them.

Every non-2xx reply is the JSON status {"code", "message", "details"}, all three keys
present: from a service, the transcoder converts the gRPC status (convert_grpc_status) and
the gateway's Lua filter adds an empty message or details the printer left out; replies
the gateway makes itself (bad JSON, no route, token refused, body too large) come from
local_reply_config in gateway/envoy.yaml.tmpl with the gRPC code of their HTTP status.
tests/e2e/test_openapi_live.py produces each documented status for real.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.common.openapi.schemas import ANY, Schema

ERROR_SCHEMA = "Error"

ERROR: Schema = {
    "type": "object",
    "description": (
        "Every error reply: a google.rpc.Status in JSON. `code` is the gRPC code, `message` "
        "is for a person, `details` for a program (google.rpc.BadRequest field violations, "
        "PreconditionFailure, ErrorInfo with a reason), empty when there are none."
    ),
    "required": ["code", "message", "details"],
    "properties": {
        "code": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 16},
        "message": {"type": "string"},
        "details": {"type": "array", "items": ANY},
    },
}


@dataclass(frozen=True)
class ErrorReply:
    status: str
    name: str
    codes: Sequence[int]
    description: str


BAD_REQUEST = ErrorReply(
    "400", "BadRequest", (3, 9),
    "INVALID_ARGUMENT (code 3): a body the gateway cannot parse, a path or query value of "
    "the wrong type, or input the service refuses (google.rpc.BadRequest names the fields). "
    "FAILED_PRECONDITION (code 9): the state does not allow it (stock below zero, an order "
    "past cancelling).",
)
UNAUTHENTICATED = ErrorReply(
    "401", "Unauthenticated", (16,),
    "UNAUTHENTICATED: the bearer token is missing, malformed, expired, wrongly signed or for "
    "another issuer or audience.",
)
PERMISSION_DENIED = ErrorReply(
    "403", "PermissionDenied", (7,),
    "PERMISSION_DENIED: the token is valid but its roles do not allow this call.",
)
NOT_FOUND = ErrorReply(
    "404", "NotFound", (5,),
    "NOT_FOUND: the resource does not exist (another customer's order answers the same).",
)
CONFLICT = ErrorReply("409", "Conflict", (6, 10), "ALREADY_EXISTS (code 6) or ABORTED (code 10).")
PAYLOAD_TOO_LARGE = ErrorReply(
    "413", "PayloadTooLarge", (8,),
    "RESOURCE_EXHAUSTED: the body is over the route's limit (1 MiB; 4 MiB for the bulk upload).",
)
RESOURCE_EXHAUSTED = ErrorReply(
    "429", "ResourceExhausted", (8,),
    "RESOURCE_EXHAUSTED from the service, e.g. request headers larger than it accepts "
    "(16 KiB; sometimes from 8 KiB).",
)
OTHER = ErrorReply(
    "default", "OtherError", tuple(range(1, 17)),
    "Any other error, in the same shape: 408/504 (code 4) when time runs out, 415 for plain "
    "HTTP on a gRPC path, 431 for headers over 32 KiB, 503 (code 14) when a service is "
    "unavailable.",
)

EVERY_REPLY = (
    BAD_REQUEST, UNAUTHENTICATED, PERMISSION_DENIED, NOT_FOUND, CONFLICT, PAYLOAD_TOO_LARGE,
    RESOURCE_EXHAUSTED, OTHER,
)

# What the generic rules (operations.py) cannot see in the protos: which RPCs answer
# NOT_FOUND without a resource id in their path, and which answer ALREADY_EXISTS or ABORTED.
SERVICE_SPECIFIC: dict[str, tuple[ErrorReply, ...]] = {
    "fulfillment.inventory.v1.InventoryService.CreateProduct": (CONFLICT,),
    "fulfillment.inventory.v1.InventoryService.BatchGetProducts": (NOT_FOUND,),
    "fulfillment.orders.v1.OrderService.CreateOrder": (NOT_FOUND,),
}


def response_component(reply: ErrorReply) -> Schema:
    codes = list(reply.codes)
    code: Schema = {"const": codes[0]} if len(codes) == 1 else {"enum": codes}
    component: Schema = {"description": reply.description}
    if reply is UNAUTHENTICATED:
        component["headers"] = {
            "WWW-Authenticate": {
                "description": (
                    "Sent when the gateway refused the token itself: "
                    '`Bearer realm="fulfillment"`, with `error="invalid_token"` for a bad one.'
                ),
                "schema": {"type": "string"},
            }
        }
    return {
        **component,
        "content": {
            "application/json": {
                "schema": {
                    "allOf": [
                        {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"},
                        {"properties": {"code": code}},
                    ]
                }
            }
        },
    }


def response_ref(reply: ErrorReply) -> Schema:
    return {"$ref": f"#/components/responses/{reply.name}"}
