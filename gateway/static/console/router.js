// Hash routes: #/, #/orders, #/orders/{order_id}, #/products, #/bulk. A query after the
// path (#/orders?status=PENDING) carries a view's filters, so a link keeps them.

export function currentRoute() {
  const hash = window.location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = hash.split("?", 2);
  return { path: path || "/", query: new URLSearchParams(query) };
}

export function matchRoute(routes, path) {
  for (const route of routes) {
    const match = route.pattern.exec(path);
    if (match) return { route, params: match.slice(1).map(decodeURIComponent) };
  }
  return null;
}

export function hrefFor(path, query = {}) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(name, value);
  }
  const text = params.toString();
  return `#${path}${text ? `?${text}` : ""}`;
}

export function orderHref(orderId) {
  return `#/orders/${encodeURIComponent(orderId)}`;
}
