"""Our protoc plugin that writes the OpenAPI 3.1 description of the HTTP/JSON API
(gateway/static/openapi.json), describing what Envoy's transcoder really accepts and
returns. `fulfillment codegen` runs it through grpcio-tools' protoc."""
