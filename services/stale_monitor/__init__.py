"""The stale-order monitor: finds orders whose next step is overdue and re-drives or fails them.

Like the worker it acts only through gRPC (ClaimStaleOrders, AdvanceOrder, ReleaseStock)
and the broker (publishing step tasks by name); it has no database access.
"""
