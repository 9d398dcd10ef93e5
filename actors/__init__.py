"""Ray actors: thin shells over spark_rl's plain engine classes.

A top-level package (per the design card), imported as `actors`, and one layer: it imports
spark_rl's pure logic, config schemas and engines; only the drivers (spark_rl.trainer, pipelines,
prm, commands) import it. tests/test_layers.py holds it to that.
"""
