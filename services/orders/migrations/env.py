from services.common.database.provisioning import alembic_env

alembic_env("orders")
