from services.common.db import alembic_env

alembic_env("orders")
