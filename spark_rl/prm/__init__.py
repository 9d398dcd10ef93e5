"""SPARK Stage 2: generative process reward models (SFT, ProcessBench eval). Their data formats are
`spark_rl.verification.prm_formats` (pure logic the PRM reward engine shares)."""
