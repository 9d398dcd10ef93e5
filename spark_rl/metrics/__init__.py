from spark_rl.metrics.passk import maj_at_k, majority_answer, mean_pass_at_k, pass_at_k
from spark_rl.metrics.processbench import (
           f1_diff_interval,
           f1_interval,
           first_error_index,
           processbench_report,
           processbench_scores,
)

__all__ = ["f1_diff_interval", "f1_interval", "first_error_index", "maj_at_k", "majority_answer", "mean_pass_at_k", "pass_at_k",
           "processbench_report", "processbench_scores"]
