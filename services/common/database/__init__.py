"""PostgreSQL plumbing shared by the services: one idea per module."""
