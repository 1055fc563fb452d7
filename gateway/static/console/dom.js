// Building DOM from data without ever parsing it as HTML: every string becomes a text node
// or an attribute value, so server text cannot inject markup.

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === "class") {
      node.className = value;
    } else if (value === true) {
      node.setAttribute(name, "");
    } else {
      node.setAttribute(name, String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replaceChildren(node, ...children) {
  node.replaceChildren();
  append(node, children);
}

export function clear(node) {
  node.replaceChildren();
}

let nextId = 0;
export function uniqueId(prefix) {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

// A labelled input with a place for the message about it (aria-describedby), as the
// forms of the console lay them out.
export function field({ label, name, type = "text", value = "", hint = "", attrs = {} }) {
  const id = uniqueId(`field-${name}`);
  const messageId = `${id}-message`;
  const hintId = hint ? `${id}-hint` : undefined;
  const input = h("input", {
    id, name, type, value,
    "aria-describedby": [hintId, messageId].filter(Boolean).join(" "),
    ...attrs,
  });
  const message = h("p", { id: messageId, class: "field-message", "data-field-message": name });
  const wrapper = h(
    "div", { class: "field" },
    h("label", { for: id }, label),
    hint ? h("p", { id: hintId, class: "hint" }, hint) : null,
    input,
    message,
  );
  return { wrapper, input, message };
}

export function setFieldMessage(entry, text) {
  entry.message.textContent = text;
  if (text) entry.input.setAttribute("aria-invalid", "true");
  else entry.input.removeAttribute("aria-invalid");
}

export function alertRegion(extraClass = "") {
  return h("div", { role: "alert", class: `alert ${extraClass}`.trim() });
}

export function statusRegion(extraClass = "") {
  return h("div", { role: "status", class: `status-line ${extraClass}`.trim() });
}

export function statusBadge(status) {
  const known = status || "STATUS_UNSPECIFIED";
  return h("span", { class: `badge badge-${known.toLowerCase()}` }, known);
}
