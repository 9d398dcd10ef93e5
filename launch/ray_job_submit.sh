#!/usr/bin/env bash
# Submit a spark-rl GRPO run to a running Ray cluster with `ray job submit`.
#
#   RAY_ADDRESS=http://HEAD:8265 launch/ray_job_submit.sh configs/paper/rl_multinode.yaml [key=value ...]
#
# The job's driver runs on the head node and joins the cluster (`cluster.address=auto`); actors
# land on nodes by the custom resources the config asks for (see README "Running on a cluster").
# Every node needs the same Python environment (`pip install -e '.[gpu]'` or `.[cpu]`, or an
# image); the working dir is shipped for configs and code, without runs/ and the venv.
# Pass an ABSOLUTE run.output_dir on storage the head node keeps (a relative one resolves inside
# Ray's temporary copy of the working dir): checkpoints, metrics and the control/ folder that
# `spark-rl ctl` writes to live there.
set -euo pipefail
: "${RAY_ADDRESS:?set RAY_ADDRESS=http://HEAD:8265 (dashboard and job server of the head node)}"
CONFIG=${1:?usage: $0 CONFIG [key=value ...]}
shift
SUBMISSION_ID=${SUBMISSION_ID:-spark-rl-$(date +%Y%m%d-%H%M%S)}

ray job submit \
  --address "$RAY_ADDRESS" \
  --submission-id "$SUBMISSION_ID" \
  --working-dir . \
  --runtime-env-json '{
      "excludes": [".venv", "runs", ".git", "*.egg-info", "**/__pycache__"],
      "env_vars": {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "TOKENIZERS_PARALLELISM": "false",
                   "HF_HUB_OFFLINE": "1"}
  }' \
  -- spark-rl train-rl "$CONFIG" cluster.address=auto "$@"

# Afterwards:
#   ray job status  --address "$RAY_ADDRESS" "$SUBMISSION_ID"
#   ray job logs -f --address "$RAY_ADDRESS" "$SUBMISSION_ID"
#   ray job stop    --address "$RAY_ADDRESS" "$SUBMISSION_ID"
# Change the running job between steps (on a machine that sees RUN_DIR):
#   spark-rl ctl scale rollout=16 --run RUN_DIR
#   spark-rl ctl swap-reward process_aware prm.model_path=/models/prm-B --run RUN_DIR
