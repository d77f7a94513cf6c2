"""Where prepare and scoring run: DuckDB (one machine) or Spark."""
