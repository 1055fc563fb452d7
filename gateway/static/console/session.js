// The signed-in token lives in sessionStorage only: gone when the tab closes, never in
// localStorage or a cookie.

const KEY = "fulfillment.console.token";

export function storedToken() {
  return sessionStorage.getItem(KEY) || "";
}

export function storeToken(token) {
  sessionStorage.setItem(KEY, token);
}

export function forgetToken() {
  sessionStorage.removeItem(KEY);
}

// Who the token says the caller is, for display only; the gateway does the verifying.
export function describeToken(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(payload.padEnd(Math.ceil(payload.length / 4) * 4, "=")));
    const roles = Array.isArray(claims.roles) ? claims.roles : [];
    return { subject: String(claims.sub || ""), roles: roles.map(String) };
  } catch {
    return { subject: "", roles: [] };
  }
}
