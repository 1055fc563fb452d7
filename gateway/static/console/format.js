// Formatting of the API's values: RFC 3339 times, decimal-string prices (summed exactly,
// never through floating point), int64 strings.

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

export function formatTime(rfc3339) {
  if (!rfc3339) return "";
  const date = new Date(rfc3339);
  return Number.isNaN(date.getTime()) ? rfc3339 : dateTime.format(date);
}

function parseDecimal(text) {
  const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(String(text ?? "").trim());
  if (!match) return null;
  const fraction = match[3] || "";
  const units = BigInt(match[2] + fraction) * (match[1] ? -1n : 1n);
  return { units, scale: fraction.length };
}

function rescale(value, scale) {
  return value.units * 10n ** BigInt(scale - value.scale);
}

function formatUnits(units, scale) {
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString().padStart(scale + 1, "0");
  const whole = digits.slice(0, digits.length - scale);
  const fraction = scale ? `.${digits.slice(digits.length - scale)}` : "";
  return `${negative ? "-" : ""}${whole}${fraction}`;
}

// quantity x unit price, exactly; null when the price is not a decimal.
export function lineTotal(unitPrice, quantity) {
  const price = parseDecimal(unitPrice);
  if (!price) return null;
  return formatUnits(price.units * BigInt(quantity || 0), price.scale);
}

export function sumDecimals(values) {
  const parsed = values.map(parseDecimal);
  if (parsed.some((value) => value === null)) return null;
  const scale = Math.max(2, ...parsed.map((value) => value.scale));
  const units = parsed.reduce((total, value) => total + rescale(value, scale), 0n);
  return formatUnits(units, scale);
}

export function orderTotal(order) {
  return sumDecimals((order.items || []).map((item) => lineTotal(item.unit_price, item.quantity)));
}

export function count(value) {
  return Number(value || 0);
}

export function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}
