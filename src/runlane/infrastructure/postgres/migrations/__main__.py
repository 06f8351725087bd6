"""Print the tables' DDL with the schema placeholder: the first draft of a new migration file."""

import sys

from runlane.infrastructure.postgres.migrations.ddl import SCHEMA_PLACEHOLDER, render_table_ddl

sys.stdout.write(";\n\n".join(render_table_ddl(SCHEMA_PLACEHOLDER, include_migrations_table=False)) + ";\n")
