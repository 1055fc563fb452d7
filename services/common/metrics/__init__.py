"""Prometheus metrics: every part serves its series as text at /metrics on its own address.

- series.py: every series we export, defined in one place (contract names and labels).
- grpc_server.py: the interceptor start_server installs on every server (RPCs by method
  and code, latency).
- multiprocess.py: several processes of one part (`serve --processes N`, the worker's
  prefork pool) writing to one directory that their parent serves as one aggregate.
- process_tree.py: the usual process_* series for such a family of processes.
- broker.py: series read from the broker's Redis when Prometheus scrapes.
- endpoint.py: the /metrics listener itself, and what a process serves on it.
"""
