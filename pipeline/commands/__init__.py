"""The ``clv`` commands: each opens what it needs (engine, store, files), runs the workflow or a stage, and
returns a result the CLI prints. The CLI (:mod:`pipeline.cli`) only parses arguments and maps errors."""
