"""Autogenerate an Alembic revision from storage/models.py (developer tool).

usage: python scripts/regen_migration.py "message"
"""

import sys
import tempfile

from alembic import command

from storage.db import make_engine
from storage.migrate import alembic_config

with tempfile.TemporaryDirectory() as d:
    eng = make_engine(f"sqlite:///{d}/scratch.db")
    cfg = alembic_config(eng)
    command.upgrade(cfg, "head")
    command.revision(cfg, message=sys.argv[1], autogenerate=True)
