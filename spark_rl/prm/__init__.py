"""SPARK Stage 2: generative process reward models (training data formats, SFT, ProcessBench eval)."""
