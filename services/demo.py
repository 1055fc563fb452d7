"""`fulfillment demo`: seed products, submit a bulk of orders, watch them all finish.

Talks to a running stack (`fulfillment up`) over gRPC at INVENTORY_ADDR / ORDERS_ADDR.
Some orders are unfulfillable on purpose (more than the stock), and a couple are canceled
while in flight, so every ending is shown.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass

import grpc
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from services.common.auth.principal import Role
from services.common.channels import sync_channel
from services.common.config import Settings
from services.common.lifecycle.status import OrderStatus
from services.common.pagination import every_page
from services.common.proto.fulfillment.inventory.v1 import (
    inventory_service_pb2 as inv,
)
from services.common.proto.fulfillment.inventory.v1 import (
    inventory_service_pb2_grpc as inv_grpc,
)
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2 as ord_pb
from services.common.proto.fulfillment.orders.v1 import orders_service_pb2_grpc as ord_grpc
from services.common.security import local_token_source
from services.common.tls import channel_credentials

Status = ord_pb.Order.Status
TERMINAL = {Status.DELIVERED, Status.CANCELED, Status.FAILED}
SHOWN = list(OrderStatus)

CATALOGUE = [
    ("Mechanical keyboard", "89.90", 80),
    ("USB-C dock", "149.00", 60),
    ("4K monitor", "1200.99", 40),
    ("Limited-edition mouse", "59.50", 2),
]


@dataclass
class DemoResult:
    counts: Counter[str]
    stock_before: dict[int, int]
    stock_after: dict[int, int]
    elapsed_s: float
    finished: bool


def _seed(stub: inv_grpc.InventoryServiceStub, run_id: str) -> list[inv.Product]:
    return [
        stub.CreateProduct(
            inv.CreateProductRequest(
                sku=f"demo-{run_id}-{i}",
                name=name,
                price=price,
                initial_stock=stock,
                description="seeded by fulfillment demo",
            ),
            timeout=10,
        )
        for i, (name, price, stock) in enumerate(CATALOGUE)
    ]


def _requests(
    products: list[inv.Product], customer: str, count: int
) -> list[ord_pb.CreateOrderRequest]:
    rng = random.Random(customer)
    scarce = products[-1]
    requests = []
    for i in range(count):
        if i % 7 == 3:  # deliberately unfulfillable: more than the scarce product's stock
            items = [
                ord_pb.CreateOrderItem(
                    product_id=scarce.product_id, quantity=scarce.stock_level + 5
                )
            ]
        else:
            chosen = rng.sample(products[:-1], k=rng.randint(1, 2))
            items = [
                ord_pb.CreateOrderItem(product_id=p.product_id, quantity=rng.randint(1, 2))
                for p in chosen
            ]
        requests.append(
            ord_pb.CreateOrderRequest(
                request_id=f"{customer}-{i}", customer_name=customer, items=items
            )
        )
    return requests


def _snapshot(stub: ord_grpc.OrderServiceStub, customer: str) -> dict[str, ord_pb.Order]:
    request = ord_pb.ListOrdersRequest(customer_name=customer, page_size=500)
    return {o.order_id: o for page in every_page(stub.ListOrders, request, timeout=10) for o in page.orders}


def _table(counts: Counter[str], total: int) -> Table:
    table = Table(title=f"{total} demo orders")
    for name in SHOWN:
        table.add_column(name, justify="right")
    table.add_row(*[str(counts.get(name, 0)) for name in SHOWN])
    return table


def run_demo(
    settings: Settings, count: int = 40, timeout: float = 300.0, console: Console | None = None
) -> DemoResult:
    console = console or Console()
    run_id = uuid.uuid4().hex[:6]
    customer = f"demo-customer-{run_id}"
    # The catalogue is an admin's to seed; the orders are one customer's, who sees and
    # cancels only its own.
    admin = local_token_source(settings, Role.ADMIN, f"demo-admin-{run_id}")
    shopper = local_token_source(settings, Role.CUSTOMER, customer)
    credentials = channel_credentials(settings)
    with (
        sync_channel(settings.inventory_addr, credentials, admin) as inv_channel,
        sync_channel(settings.orders_addr, credentials, shopper) as ord_channel,
    ):
        inventory = inv_grpc.InventoryServiceStub(inv_channel)
        orders = ord_grpc.OrderServiceStub(ord_channel)
        products = _seed(inventory, run_id)
        before = {p.product_id: p.stock_level for p in products}
        console.print(
            f"seeded {len(products)} products: "
            + ", ".join(f"{p.name} (stock {p.stock_level})" for p in products)
        )

        started = time.monotonic()
        results = list(
            orders.BulkCreateOrders(iter(_requests(products, customer, count)), timeout=60)
        )
        created = [r.order.order_id for r in results if r.status.code == 0]
        console.print(
            f"submitted {count} orders in one BulkCreateOrders stream: {len(created)} accepted"
        )

        to_cancel = set(created[1:3])
        progress = Progress(
            TextColumn("terminal"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        task = progress.add_task("orders", total=len(created))
        counts: Counter[str] = Counter()
        finished = False
        with Live(console=console, refresh_per_second=8) as live:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                snapshot = _snapshot(orders, customer)
                for order_id in list(to_cancel):
                    order = snapshot.get(order_id)
                    if order is not None and order.status in (
                        Status.PROCESSING,
                        Status.PACKAGING,
                        Status.PENDING,
                    ):
                        try:
                            orders.CancelOrder(
                                ord_pb.CancelOrderRequest(
                                    order_id=order_id, reason="demo: customer changed their mind"
                                ),
                                timeout=10,
                            )
                        except grpc.RpcError:
                            pass  # it moved past PACKAGING first; that is fine
                        to_cancel.discard(order_id)
                counts = Counter(Status.Name(o.status) for o in snapshot.values())
                done = sum(1 for o in snapshot.values() if o.status in TERMINAL)
                progress.update(task, completed=done)
                grid = Table.grid()
                grid.add_row(_table(counts, len(created)))
                grid.add_row(progress)
                live.update(grid)
                if done == len(created):
                    finished = True
                    break
                time.sleep(0.3)
        after = {
            pid: inventory.GetStock(inv.GetStockRequest(product_id=pid), timeout=10).stock_level
            for pid in before
        }
        elapsed = time.monotonic() - started

    summary = Table(title="summary")
    summary.add_column("product")
    summary.add_column("stock before", justify="right")
    summary.add_column("stock after", justify="right")
    for product in products:
        summary.add_row(
            product.name, str(before[product.product_id]), str(after[product.product_id])
        )
    console.print(summary)
    console.print(
        f"delivered {counts.get('DELIVERED', 0)}, failed {counts.get('FAILED', 0)}, "
        f"canceled {counts.get('CANCELED', 0)} of {len(created)} in {elapsed:.1f}s"
        + ("" if finished else f" (timed out after {timeout:.0f}s with orders still in flight)")
    )
    return DemoResult(counts, before, after, elapsed, finished)
