// The console's client of the public HTTP API: the same routes and JSON any caller uses,
// with the signed-in token as a bearer. Errors arrive as the gateway's JSON status shape
// {code, message, details} and become ApiError.

import { streamJsonArray } from "./json_stream.js";

const BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest";
const PRECONDITION_FAILURE = "type.googleapis.com/google.rpc.PreconditionFailure";

export class ApiError extends Error {
  constructor(httpStatus, body) {
    const status = body && typeof body === "object" ? body : {};
    super(status.message || `the gateway answered HTTP ${httpStatus}`);
    this.name = "ApiError";
    this.httpStatus = httpStatus;
    this.code = status.code ?? 0;
    this.details = Array.isArray(status.details) ? status.details : [];
  }

  // {field: description} from google.rpc.BadRequest details.
  get fieldViolations() {
    return fieldViolationsOf(this.details);
  }

  get preconditionViolations() {
    return this.details
      .filter((detail) => detail["@type"] === PRECONDITION_FAILURE)
      .flatMap((detail) => detail.violations || []);
  }
}

export function fieldViolationsOf(details) {
  const violations = {};
  for (const detail of details || []) {
    if (detail["@type"] !== BAD_REQUEST) continue;
    for (const violation of detail.field_violations || []) {
      const field = violation.field || "";
      violations[field] = violations[field]
        ? `${violations[field]}; ${violation.description}`
        : violation.description || "";
    }
  }
  return violations;
}

// What to tell a person about a failed call.
export function describeError(error) {
  if (error instanceof ApiError) {
    if (error.httpStatus === 403) return `Your role is not allowed to do this: ${error.message}`;
    return error.message;
  }
  return `Something went wrong: ${error && error.message ? error.message : String(error)}`;
}

export function isAbort(error) {
  return error && error.name === "AbortError";
}

// %20 for a space, never "+": Envoy's transcoder takes "+" in a query value literally.
function queryString(query) {
  const pairs = Object.entries(query || {})
    .filter(([, value]) => value !== undefined && value !== null && value !== "")
    .map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(value)}`);
  return pairs.length ? `?${pairs.join("&")}` : "";
}

async function errorOf(response) {
  const text = await response.text();
  try {
    return new ApiError(response.status, JSON.parse(text));
  } catch {
    return new ApiError(response.status, { message: `the gateway answered HTTP ${response.status}` });
  }
}

export class Api {
  // onUnauthenticated(error): the token was refused (HTTP 401); the app signs out.
  constructor(token, onUnauthenticated) {
    this.token = token;
    this.onUnauthenticated = onUnauthenticated;
  }

  async send(method, path, { body, query, signal } = {}) {
    const url = path + queryString(query);
    const headers = { Authorization: `Bearer ${this.token}`, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(url, {
        method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      if (isAbort(error)) throw error;
      throw new ApiError(0, { message: "The gateway could not be reached; is the stack running?" });
    }
    if (!response.ok) {
      const error = await errorOf(response);
      if (response.status === 401 && this.onUnauthenticated) this.onUnauthenticated(error);
      throw error;
    }
    return response;
  }

  async call(method, path, options) {
    const response = await this.send(method, path, options);
    const text = await response.text();
    return text ? JSON.parse(text) : {};
  }

  get(path, query, signal) {
    return this.call("GET", path, { query, signal });
  }

  post(path, body, signal) {
    return this.call("POST", path, { body, signal });
  }

  // Each element of a streamed JSON array reply, as it arrives.
  async *stream(method, path, { body, signal } = {}) {
    const response = await this.send(method, path, { body, signal });
    yield* streamJsonArray(response);
  }
}
