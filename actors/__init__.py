"""Ray actors: thin shells over spark_rl's plain engine classes.

Importable as `actors` (top level, per the design card) and as `spark_rl.actors`.
"""
