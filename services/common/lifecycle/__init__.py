"""What the order lifecycle's actors share: the status vocabulary, the step task contract
on the broker, the broker's lag and liveness, and the gRPC clients (with their one retry
policy) through which the worker and the monitor act on the two services.

The orders service owns the rules of which transition is allowed
(services/orders/domain/lifecycle.py); the worker owns what each step does
(services/lifecycle_worker); the monitor owns when a stale step is re-driven or failed
(services/stale_monitor). They all speak of statuses in the terms of status.py.
"""
