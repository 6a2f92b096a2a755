"""The version of the syscall tables in _tables.py: a digest of their contents, written with them
by tools/gen_syscall_tables.py. It is part of the compile cache's key and lives apart from the
tables so that a cache hit does not load them (~1,200 lines)."""

TABLE_VERSION = "2fc895591c9bb667"
