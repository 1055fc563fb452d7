"""The lifecycle worker: Celery step tasks that walk each order to a terminal state.

`domain` holds the lifecycle rules, `service` runs one step against the two services
through `adapters`, and `celery_app` / `runner` are the entrypoints. Nothing here touches
a database: every effect goes through the orders and inventory gRPC APIs.
"""
