#!/usr/bin/env bash
# Submit a spark-rl GRPO run to a running Ray cluster with `ray job submit`.
#
#   RAY_ADDRESS=http://HEAD:8265 launch/ray_job_submit.sh configs/paper/rl_multinode.yaml [key=value ...]
#
# The job's driver runs on the head node and joins the cluster (`cluster.address=auto`); actors
# land on nodes by the custom resources the config asks for (see README "Running on a cluster").
# Every node needs the same Python environment (`pip install -e '.[gpu]'` or `.[cpu]`, or an
# image), with `spark-rl` on the PATH of the `ray start` processes; this repository (the folder
# above this script, wherever it is called from) is shipped for configs and code, without runs/
# and the venv. CONFIG is a path inside the repository (or an absolute one).
# Pass an ABSOLUTE run.output_dir on storage the head node keeps (a relative one resolves inside
# Ray's temporary copy of the working dir): checkpoints, metrics and the control/ folder that
# `spark-rl ctl` writes to live there.
#
# Token authentication: Ray 2.60 turns it on for every new head (`ray start --head` writes a token
# to ~/.ray/auth_token on the head), and job submission is refused without it ("AuthenticationError:
# Missing authentication token"). Give this script the head's token: on the head `ray get-auth-token`,
# here `export RAY_AUTH_TOKEN=<token>` (or RAY_AUTH_TOKEN_PATH=<file>, or the same ~/.ray/auth_token
# on a shared home); the script then sets RAY_AUTH_MODE=token unless you set RAY_AUTH_MODE yourself.
# Worker nodes joining with `ray start --address` need the same token. A head started with
# RAY_AUTH_MODE=disabled needs none (only on a network nobody else reaches).
#
# Benchmark data (data.kind=benchmark, eval suites): the job reads the files shipped in the package
# (spark_rl/assets/data, part of the repository copy it runs in). SPARK_RL_DATA_DIR, when you set
# it, is passed to the job and read instead; that path must exist on the head node (shared storage).
set -euo pipefail
: "${RAY_ADDRESS:?set RAY_ADDRESS=http://HEAD:8265 (dashboard and job server of the head node)}"
CONFIG=${1:?usage: $0 CONFIG [key=value ...]}
shift
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
SUBMISSION_ID=${SUBMISSION_ID:-spark-rl-$(date +%Y%m%d-%H%M%S)}

if [ -z "${RAY_AUTH_MODE:-}" ] && { [ -n "${RAY_AUTH_TOKEN:-}" ] || [ -s "${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token}" ]; }; then
  export RAY_AUTH_MODE=token
fi

DATA_DIR=${SPARK_RL_DATA_DIR:-}
if [ -n "$DATA_DIR" ]; then
  [ -d "$DATA_DIR" ] || { echo "SPARK_RL_DATA_DIR=$DATA_DIR is not a directory" >&2; exit 2; }
  DATA_DIR=$(cd "$DATA_DIR" && pwd)
else
  echo "note: no SPARK_RL_DATA_DIR: the job reads the benchmark files shipped in the package (spark_rl/assets/data)" >&2
fi
ENV_VARS='"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"'
if [ -n "$DATA_DIR" ]; then
  ENV_VARS="$ENV_VARS, \"SPARK_RL_DATA_DIR\": \"$DATA_DIR\""
fi

ray job submit \
  --address "$RAY_ADDRESS" \
  --submission-id "$SUBMISSION_ID" \
  --working-dir "$REPO" \
  --runtime-env-json "{
      \"excludes\": [\".venv\", \"runs\", \".git\", \"*.egg-info\", \"**/__pycache__\"],
      \"env_vars\": {$ENV_VARS}
  }" \
  -- spark-rl train-rl "$CONFIG" cluster.address=auto "$@"

# Afterwards:
#   ray job status  --address "$RAY_ADDRESS" "$SUBMISSION_ID"
#   ray job logs -f --address "$RAY_ADDRESS" "$SUBMISSION_ID"
#   ray job stop    --address "$RAY_ADDRESS" "$SUBMISSION_ID"
# Change the running job between steps (on a machine that sees RUN_DIR):
#   spark-rl ctl scale rollout=16 --run RUN_DIR
#   spark-rl ctl swap-reward process_aware prm.model_path=/models/prm-B --run RUN_DIR
