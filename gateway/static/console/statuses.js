// Order.Status values as the API names them, in lifecycle order.
export const STATUSES = [
  "PENDING", "PROCESSING", "PACKAGING", "SHIPPED", "DELIVERED", "CANCELED", "FAILED",
];

export const TERMINAL = new Set(["DELIVERED", "CANCELED", "FAILED"]);
