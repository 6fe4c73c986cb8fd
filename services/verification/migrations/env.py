from alembic import context

from services.verification.models import Base
from shared.migrations import run_env

run_env(context, Base.metadata)
