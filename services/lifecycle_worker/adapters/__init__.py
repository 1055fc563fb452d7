"""gRPC and Celery implementations of the lifecycle ports."""
