// Reading an upload for BulkCreateOrders: a JSON array of CreateOrderRequest objects, or a
// CSV with a header row naming the columns
//   customer_name,product_id,quantity[,request_id][,customer_id]
// where rows sharing a non-empty request_id (and customer) become one order with several
// items, and every other row is an order of one item.

export const CSV_COLUMNS = ["customer_name", "product_id", "quantity", "request_id", "customer_id"];
const REQUIRED_COLUMNS = ["customer_name", "product_id", "quantity"];
const WHOLE_NUMBER = /^-?\d+$/;

// -> {orders: [{request, source, problem}]}: `source` says where in the file the order
// came from; an order with a `problem` is not sent.
export function parseOrdersFile(name, text) {
  const trimmed = text.replace(/^\uFEFF/, "").trim();
  if (/\.json$/i.test(name) || trimmed.startsWith("[") || trimmed.startsWith("{")) return parseJson(trimmed);
  return parseCsv(trimmed);
}

function parseJson(text) {
  let data;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new Error(`The file is not valid JSON: ${error.message}`);
  }
  const list = Array.isArray(data) ? data : data && Array.isArray(data.orders) ? data.orders : null;
  if (!list) throw new Error('A JSON file must hold an array of orders (or {"orders": [...]}).');
  return {
    orders: list.map((request, index) => ({
      request,
      source: `element ${index + 1}`,
      problem: request && typeof request === "object" && !Array.isArray(request)
        ? "" : "each element must be an object such as {\"customer_name\": ..., \"items\": [...]}",
    })),
  };
}

function parseCsv(text) {
  const rows = csvRows(text);
  if (rows.length === 0) throw new Error("The file is empty.");
  const header = rows[0].cells.map((cell) => cell.trim().toLowerCase());
  const missing = REQUIRED_COLUMNS.filter((column) => !header.includes(column));
  if (missing.length) {
    throw new Error(`The CSV header must name the columns ${REQUIRED_COLUMNS.join(", ")}; missing: ${missing.join(", ")}.`);
  }
  const unknown = header.filter((column) => !CSV_COLUMNS.includes(column));
  if (unknown.length) throw new Error(`Unknown CSV columns: ${unknown.join(", ")}.`);

  const orders = [];
  const groups = new Map();
  for (const { cells, line } of rows.slice(1)) {
    if (cells.every((cell) => cell.trim() === "")) continue;
    const row = Object.fromEntries(header.map((column, index) => [column, (cells[index] ?? "").trim()]));
    let problem = "";
    if (cells.length !== header.length) problem = `line ${line} has ${cells.length} values for ${header.length} columns`;
    else if (!WHOLE_NUMBER.test(row.product_id)) problem = `line ${line}: product_id must be a whole number`;
    else if (!WHOLE_NUMBER.test(row.quantity)) problem = `line ${line}: quantity must be a whole number`;
    const item = { product_id: row.product_id, quantity: problem ? 0 : Number(row.quantity) };
    const key = row.request_id ? JSON.stringify([row.customer_name, row.customer_id || "", row.request_id]) : null;
    const grouped = key && groups.get(key);
    if (grouped) {
      grouped.request.items.push(item);
      grouped.lines.push(line);
      grouped.source = `lines ${grouped.lines.join(", ")}`;
      if (problem && !grouped.problem) grouped.problem = problem;
      continue;
    }
    const request = { customer_name: row.customer_name, items: [item] };
    if (row.request_id) request.request_id = row.request_id;
    if (row.customer_id) request.customer_id = row.customer_id;
    const order = { request, source: `line ${line}`, lines: [line], problem };
    orders.push(order);
    if (key) groups.set(key, order);
  }
  return { orders: orders.map(({ request, source, problem }) => ({ request, source, problem })) };
}

// RFC 4180: commas, double quotes around a value with commas, quotes ("") or line breaks.
function csvRows(text) {
  const rows = [];
  let cells = [];
  let cell = "";
  let quoted = false;
  let line = 1;
  let rowLine = 1;
  for (let i = 0; i < text.length; i += 1) {
    const char = text[i];
    if (quoted) {
      if (char === '"' && text[i + 1] === '"') {
        cell += '"';
        i += 1;
      } else if (char === '"') {
        quoted = false;
      } else {
        if (char === "\n") line += 1;
        cell += char;
      }
    } else if (char === '"') {
      quoted = true;
    } else if (char === ",") {
      cells.push(cell);
      cell = "";
    } else if (char === "\n" || char === "\r") {
      if (char === "\r" && text[i + 1] === "\n") i += 1;
      cells.push(cell);
      rows.push({ cells, line: rowLine });
      cells = [];
      cell = "";
      line += 1;
      rowLine = line;
    } else {
      cell += char;
    }
  }
  cells.push(cell);
  rows.push({ cells, line: rowLine });
  return rows;
}
