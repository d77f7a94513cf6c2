"""clv-pipeline: the batch training job (prepare -> fit -> score -> validate -> track)."""
