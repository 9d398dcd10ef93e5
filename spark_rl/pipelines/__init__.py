"""Data pipelines of the SPARK stages (Stage 1 synthesis, its shard store and quality report)."""
