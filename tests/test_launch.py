"""The launch recipes (launch/): `ray_job_submit.sh` end to end against a real local head, and with
a stand-in `ray` for what it passes; the SLURM script with stand-in `srun`/`scontrol`/`ray`; the
KubeRay RayJob manifest against the RayJob schema's essentials."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def _stub(bin_dir: Path, name: str, body: str) -> None:
    p = bin_dir / name
    p.write_text("#!/usr/bin/env bash\n" + body)
    p.chmod(0o755)


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything that points Ray at a cluster or a token."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RAY_ADDRESS", "RAY_AUTH", "RAY_JOB_CONFIG")) and k != "PYTHONPATH"}
    env.update(extra)
    return env


# ---- ray_job_submit.sh with a stand-in `ray` ------------------------------------------------------


def _submit_with_stub_ray(tmp_path: Path, repo: Path, **env: str) -> tuple[list[str], dict[str, str], str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    _stub(bin_dir, "ray", f'printf "%s\\0" "$@" > {tmp_path}/ray.args; env > {tmp_path}/ray.env\n')
    run = subprocess.run(["bash", str(repo / "launch" / "ray_job_submit.sh"), "configs/demo/rlvr.yaml", "grpo.steps=2"],
                         env=_clean_env(PATH=f"{bin_dir}:{os.environ['PATH']}", RAY_ADDRESS="http://h:8265",
                                        HOME=str(tmp_path / "home"), **env),
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    args = (tmp_path / "ray.args").read_text().split("\0")[:-1]
    seen_env = dict(line.split("=", 1) for line in (tmp_path / "ray.env").read_text().splitlines() if "=" in line)
    return args, seen_env, run.stderr


def _runtime_env(args: list[str]) -> dict:
    return json.loads(args[args.index("--runtime-env-json") + 1])


def test_ray_job_submit_passes_the_data_dir_and_turns_on_token_auth(tmp_path):
    # the job reads the benchmark files shipped in the package: a folder beside the repository
    # (this workplace's ../shared/data) is not looked for, only an explicit SPARK_RL_DATA_DIR is passed
    clone = tmp_path / "work" / "clone"
    shutil.copytree(REPO / "launch", clone / "launch")
    (tmp_path / "work" / "shared" / "data").mkdir(parents=True)
    (tmp_path / "home" / ".ray").mkdir(parents=True)
    (tmp_path / "home" / ".ray" / "auth_token").write_text("t0ken")      # what `ray start --head` writes
    args, env, err = _submit_with_stub_ray(tmp_path, clone)
    renv = _runtime_env(args)
    assert "SPARK_RL_DATA_DIR" not in renv["env_vars"] and "shipped in the package" in err
    assert args[args.index("--working-dir") + 1] == str(clone)          # the repository, from any cwd
    assert args[args.index("--") + 1:] == ["spark-rl", "train-rl", "configs/demo/rlvr.yaml", "cluster.address=auto",
                                           "grpo.steps=2"]
    assert env["RAY_AUTH_MODE"] == "token"
    # an explicit SPARK_RL_DATA_DIR wins; an explicit RAY_AUTH_MODE is kept
    mine = tmp_path / "mydata"
    mine.mkdir()
    args, env, _ = _submit_with_stub_ray(tmp_path, clone, SPARK_RL_DATA_DIR=str(mine), RAY_AUTH_MODE="disabled")
    assert _runtime_env(args)["env_vars"]["SPARK_RL_DATA_DIR"] == str(mine) and env["RAY_AUTH_MODE"] == "disabled"


def test_ray_job_submit_without_a_data_dir_says_so_and_rejects_a_bad_one(tmp_path):
    clone = tmp_path / "clone"
    shutil.copytree(REPO / "launch", clone / "launch")
    args, env, err = _submit_with_stub_ray(tmp_path, clone)
    assert "SPARK_RL_DATA_DIR" not in _runtime_env(args)["env_vars"] and "SPARK_RL_DATA_DIR" in err
    assert "RAY_AUTH_MODE" not in env                                   # no token anywhere: nothing set
    bad = subprocess.run(["bash", str(clone / "launch" / "ray_job_submit.sh"), "c.yaml"], capture_output=True, text=True,
                         env=_clean_env(RAY_ADDRESS="http://h:8265", SPARK_RL_DATA_DIR=str(tmp_path / "nope")))
    assert bad.returncode != 0 and "nope is not a directory" in bad.stderr


# ---- ray_job_submit.sh end to end: a real head, a real 2-step train-rl ----------------------------


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _processes_mentioning(text: str) -> list[int]:
    """Pids of processes whose command line contains `text` (read from /proc; nothing is killed)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if text in (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


def _processes_in_group(pgid: int) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if os.getpgid(int(d.name)) == pgid:
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


class LocalHead:
    """`ray start --head --block` on 127.0.0.1 with its own temp dir, ports and token, in its own
    process group (Ray's reaper ends the group when `ray start` exits). Stopped by signalling
    exactly these processes, never with `ray stop` (which stops every Ray on the machine)."""

    def __init__(self, base: Path, num_cpus: int = 4):
        self.base = base
        self.gcs_port, self.dashboard_port, *more = _free_ports(10)
        self.token_path = base / "auth_token"
        self.token_path.write_text(os.urandom(16).hex())
        self.env = _clean_env(PATH=f"{VENV_BIN}:{os.environ['PATH']}", RAY_AUTH_MODE="token",
                              RAY_AUTH_TOKEN_PATH=str(self.token_path), RAY_USAGE_STATS_ENABLED="0",
                              DS_ACCELERATOR="cpu", VLLM_CPU_KVCACHE_SPACE="1", HF_HUB_OFFLINE="1",
                              # no idle workers started ahead of need: on 2 cores they cost a minute
                              RAY_prestart_worker_first_driver="0", RAY_enable_worker_prestart="0")
        names = ["--ray-client-server-port", "--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
                 "--runtime-env-agent-port", "--metrics-export-port", "--node-manager-port", "--object-manager-port"]
        cmd = [str(VENV_BIN / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={self.gcs_port}",
               "--dashboard-host=127.0.0.1", f"--dashboard-port={self.dashboard_port}", f"--temp-dir={base / 'ray'}",
               f"--num-cpus={num_cpus}", "--num-gpus=0", f"--object-store-memory={1 << 30}", "--disable-usage-stats",
               *(f"{n}={p}" for n, p in zip(names, more))]
        self.log = open(base / "head.log", "w")
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, cwd=base,
                                     start_new_session=True)
        self.address = f"http://127.0.0.1:{self.dashboard_port}"

    def wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            assert self.proc.poll() is None, (self.base / "head.log").read_text()[-3000:]
            try:
                urllib.request.urlopen(f"{self.address}/api/version", timeout=2)
                return
            except urllib.error.HTTPError:       # up, and asking for the token
                return
            except OSError:
                time.sleep(1)
        raise TimeoutError(f"ray head not up after {timeout_s}s: {(self.base / 'head.log').read_text()[-3000:]}")

    def stop(self) -> list[int]:
        """Stop the head and everything it started; return the pids still alive (should be none)."""
        pgid = self.proc.pid
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        deadline = time.time() + 15
        while time.time() < deadline and (left := _processes_in_group(pgid) + _processes_mentioning(str(self.base))):
            time.sleep(0.5)
        for pid in _processes_in_group(pgid) + _processes_mentioning(str(self.base)):
            try:
                os.kill(pid, signal.SIGKILL)          # a straggler of this head (or its job's driver)
            except OSError:
                pass
        time.sleep(0.5)
        self.log.close()
        left = _processes_in_group(pgid) + _processes_mentioning(str(self.base))
        return left


@pytest.mark.integration
def test_ray_job_submit_runs_train_rl_on_a_local_head(tiny_model_dir):
    """`ray start --head` on 127.0.0.1, then the launcher from a copy of the repository with no
    ../shared beside it: a 2-step train-rl job SUCCEEDED, its run folder written, and the head
    gone afterwards with nothing left behind (no process, no address file outside its temp dir)."""
    base = Path(tempfile.mkdtemp(prefix="srj-", dir="/tmp"))          # short: Ray's socket paths
    clone = base / "clone"
    shutil.copytree(REPO, clone, ignore=shutil.ignore_patterns(".git", ".venv", "runs", "__pycache__", "*.egg-info"))
    run_dir = base / "run"
    t0 = time.time()
    head = LocalHead(base)
    try:
        head.wait_ready()
        t_ready = time.time()
        overrides = [
            "grpo.steps=2", "grpo.prompts_per_step=2", "grpo.group_size=2", "grpo.max_new_tokens=12",
            "grpo.eval_every=0", "grpo.checkpoint_every=1", "run.keep_checkpoints=1", "data.train_size=16",
            "data.eval_size=0", f"run.output_dir={run_dir}", "run.tensorboard=false", "run.export_final=false",
            f"policy.model_path={tiny_model_dir}", "rollout.engine.max_model_len=256", "learner.engine.micro_batch_size=4",
            "grpo.loss.kl_coef=0",   # no reference worker: learner, vLLM rollout and reward workers suffice here
        ]
        env = {k: v for k, v in head.env.items() if k != "RAY_AUTH_MODE"}   # the launcher sets it itself
        env.update(RAY_ADDRESS=head.address, SUBMISSION_ID="spark-rl-e2e")
        sub = subprocess.run(["bash", str(clone / "launch" / "ray_job_submit.sh"), "configs/demo/rlvr.yaml", *overrides,
                              "--no-progress"], env=env, cwd=base, capture_output=True, text=True, timeout=240)
        t_job = time.time()
        status = subprocess.run([sys.executable, "-c", "import sys; from ray.job_submission import JobSubmissionClient as C; "
                                 "print(C(sys.argv[1]).get_job_status('spark-rl-e2e').value)", head.address],
                                env={**env, "RAY_AUTH_MODE": "token"}, capture_output=True, text=True, timeout=60)
        assert status.stdout.strip() == "SUCCEEDED", (sub.stdout[-4000:], sub.stderr[-4000:], status.stdout, status.stderr[-2000:])
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in rows if "train/loss" in r] == [1, 2]
        assert json.loads((run_dir / "final.json").read_text())["step"] == 2
        assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["latest", "step_000002"]
        print(f"head up {t_ready - t0:.1f}s, job {t_job - t_ready:.1f}s")
    finally:
        t_stop = time.time()
        left = head.stop()
        print(f"head stopped in {time.time() - t_stop:.1f}s")
        current = Path("/tmp/ray/ray_current_cluster")
        stale = current.exists() and f"127.0.0.1:{head.gcs_port}" in current.read_text()
        shutil.rmtree(base, ignore_errors=True)
    assert left == [], f"processes left behind by the head: {left}"
    assert not stale


# ---- the SLURM script with stand-ins for srun / scontrol / hostname / ray / python ---------------

SLURM_STUBS = {
    # srun: log the step with its options, then run its command here (all "nodes" are this machine)
    "srun": 'echo "srun $*" >> "$STUB_LOG"\n'
            'while [ $# -gt 0 ]; do case "$1" in -w) shift 2 ;; -*) shift ;; *) break ;; esac; done\n'
            'exec "$@"\n',
    "scontrol": '[ "$1 $2" = "show hostnames" ] && printf "%s\\n" $FAKE_NODES\n',
    "hostname": 'echo "$FAKE_IPS"\n',
    "ray": 'echo "ray $*" >> "$STUB_LOG"\n'
           '[ "$1 $2" = "job submit" ] && { printf "%s\\0" "$@" > "$STUB_LOG.submit"; exit "${FAKE_JOB_RC:-0}"; }\n'
           'exit 0\n',
    "python": 'echo "${FAKE_ALIVE:-0}"\n',       # the node count the head reports
}


def _sbatch(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess, list[str], Path]:
    bin_dir, repo = tmp_path / "bin", tmp_path / "repo"
    if not bin_dir.exists():
        bin_dir.mkdir()
        for name, body in SLURM_STUBS.items():
            _stub(bin_dir, name, body)
        shutil.copytree(REPO / "launch", repo / "launch")
    log = tmp_path / "steps.log"
    log.unlink(missing_ok=True)
    base = dict(PATH=f"{bin_dir}:{os.environ['PATH']}", STUB_LOG=str(log), SLURM_SUBMIT_DIR=str(repo),
                SLURM_JOB_ID="77", SLURM_JOB_NODELIST="n[1-3]", SLURM_GPUS_PER_NODE="h100:8",
                SLURM_CPUS_PER_TASK="32", FAKE_NODES="n1 n2 n3", FAKE_IPS="fe80::1 127.0.1.1 10.1.2.3 10.9.9.9",
                FAKE_ALIVE="3", HOME=str(tmp_path))
    base.update(env)
    run = subprocess.run(["bash", str(repo / "launch" / "slurm" / "spark_rl.sbatch"), "configs/paper/rl_multinode.yaml",
                          "grpo.steps=2"], env=_clean_env(**base), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    return run, log.read_text().splitlines() if log.exists() else [], repo


def test_slurm_script_starts_every_node_with_its_resources_and_submits(tmp_path):
    run, steps, repo = _sbatch(tmp_path)
    assert run.returncode == 0, run.stderr
    starts = [s for s in steps if s.startswith("srun") and " ray start " in s]
    assert len(starts) == 3
    for s in starts:                     # each Ray node holds its node's CPUs and GPUs
        assert "--cpus-per-task=32" in s and "--gres=gpu:8" in s, s
    on = {next(h for h in ("n1", "n2", "n3") if f"-w {h} " in s): s for s in starts}   # background steps: any order
    head, reward, rollout = on["n1"], on["n2"], on["n3"]
    assert "--head --node-ip-address=10.1.2.3 " in head and '{"train": 8}' in head
    assert "--address=10.1.2.3:6379" in reward and '{"reward": 8}' in reward
    assert '{"rollout": 8}' in rollout
    submit = (tmp_path / "steps.log.submit").read_text().split("\0")[:-1]
    run_dir = repo / "runs" / "slurm-77"
    assert run_dir.is_dir()                                           # made before anything writes there
    assert submit[submit.index("--") + 1:] == ["spark-rl", "train-rl", "configs/paper/rl_multinode.yaml",
                                               "cluster.address=auto", f"run.output_dir={run_dir}", "grpo.steps=2"]
    json.loads(submit[submit.index("--runtime-env-json") + 1])
    assert steps[-1].startswith("ray stop --force")                   # the cluster is stopped at the end
    out_dirs = [line.split("=", 1)[1] for line in (repo / "launch/slurm/spark_rl.sbatch").read_text().splitlines()
                if line.startswith("#SBATCH --output")]
    assert out_dirs and all("/" not in d for d in out_dirs), "SLURM does not create --output's folder"


def test_slurm_script_fails_when_nodes_do_not_join(tmp_path):
    run, steps, _ = _sbatch(tmp_path, FAKE_ALIVE="1", RAY_WAIT_S="0")
    assert run.returncode != 0 and "only 1 of 3 Ray nodes joined" in run.stderr
    assert not any(s.startswith("ray job submit") for s in steps)
    # the cluster is stopped on the way out (the worker starts run in the background: with no wait
    # for them, one may log its start after the stop, so the stop need not be the last line)
    assert any(s.startswith("ray stop --force") for s in steps), steps


def test_slurm_script_needs_a_routable_head_address(tmp_path):
    run, _, _ = _sbatch(tmp_path, FAKE_IPS="::1 fe80::1 127.0.1.1")
    assert run.returncode != 0 and "set HEAD_IP" in run.stderr
    run, steps, _ = _sbatch(tmp_path, FAKE_IPS="::1", HEAD_IP="192.168.0.5")
    assert run.returncode == 0 and any("--node-ip-address=192.168.0.5" in s for s in steps)


def test_slurm_script_exits_with_the_job_status(tmp_path):
    run, _, _ = _sbatch(tmp_path, FAKE_JOB_RC="3")
    assert run.returncode == 3


# ---- the KubeRay RayJob manifest against the RayJob schema's essentials ----------------------------

RAYJOB = REPO / "launch" / "kuberay" / "rayjob.yaml"
IMAGE_REPO = "/opt/spark-rl"          # where the manifest's image holds this repository


def _manifest() -> dict:
    import yaml

    return yaml.safe_load(RAYJOB.read_text())


def _groups(m: dict) -> list[dict]:
    spec = m["spec"]["rayClusterSpec"]
    return [{"groupName": "head", **spec["headGroupSpec"]}] + spec["workerGroupSpecs"]


def _operator_resources(params: dict) -> dict[str, float]:
    """How the KubeRay operator reads rayStartParams["resources"] (pod.go getResourcesMap): surrounding
    quotes and spaces trimmed, then JSON. When this fails it also skips injecting num-gpus."""
    raw = params.get("resources")
    return {} if raw is None else json.loads(raw.strip("'\"` "))


def _container_limit(group: dict, key: str) -> float:
    return sum(float(c["resources"]["limits"].get(key, 0)) for c in group["template"]["spec"]["containers"])


def test_rayjob_has_the_fields_and_types_the_crd_requires():
    m = _manifest()
    assert m["apiVersion"] == "ray.io/v1" and m["kind"] == "RayJob"
    assert m["metadata"]["name"].replace("-", "").isalnum() and m["metadata"]["name"].islower()
    spec = m["spec"]
    assert isinstance(spec["entrypoint"], str) and spec["entrypoint"].split()[:2] == ["spark-rl", "train-rl"]
    assert spec["rayClusterSpec"]["authOptions"]["mode"] == "token"        # Ray 2.60 heads demand a token
    names = [g["groupName"] for g in spec["rayClusterSpec"]["workerGroupSpecs"]]
    assert len(names) == len(set(names))
    for g in _groups(m):
        where = g["groupName"]
        assert isinstance(g["rayStartParams"], dict), f"{where}: rayStartParams is required (a map)"
        for k, v in g["rayStartParams"].items():              # map[string]string: 0 or true would be rejected
            assert isinstance(v, str), f"{where}: rayStartParams.{k} must be a string, got {v!r}"
        for k, v in g.get("resources", {}).items():            # map[string]string of quantities
            assert isinstance(v, str) and float(v) > 0, f"{where}: resources.{k} must be a quantity string, got {v!r}"
        _operator_resources(g["rayStartParams"])               # parseable by the operator, if given at all
        containers = g["template"]["spec"]["containers"]
        assert containers and all(c.get("name") and c.get("image") for c in containers), where
        if where != "head":
            assert all(isinstance(g[k], int) for k in ("replicas", "minReplicas", "maxReplicas")), where
            assert g["minReplicas"] <= g["replicas"] <= g["maxReplicas"], where


def test_rayjob_entrypoint_config_exists_and_data_dir_is_mounted():
    import yaml

    m = _manifest()
    config = m["spec"]["entrypoint"].split()[2]
    assert config.startswith(IMAGE_REPO + "/"), f"{config}: relative paths depend on the driver's cwd"
    assert (REPO / config.removeprefix(IMAGE_REPO + "/")).is_file()
    env = yaml.safe_load(m["spec"]["runtimeEnvYAML"])["env_vars"]
    assert all(isinstance(v, str) for v in env.values())
    head = m["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert env["SPARK_RL_DATA_DIR"] in [v["mountPath"] for v in head["volumeMounts"]]   # the driver loads the data


def test_rayjob_pods_hold_what_the_config_asks_for():
    """configs/paper/rl_multinode.yaml's groups vs the pods carrying their custom resource: enough
    of it, of GPUs, and of CPUs with room to spare for Ray's own processes."""
    from actors.placement import combined
    from spark_rl.config import load_config
    from spark_rl.config.rl import RLConfig

    m = _manifest()
    cfg = load_config(RLConfig, REPO / m["spec"]["entrypoint"].split()[2].removeprefix(IMAGE_REPO + "/"))
    colocated = cfg.reference.resources if cfg.reference.colocate_with_learner else None
    asks = [(combined(cfg.learner.resources, colocated), cfg.learner.num_ranks),
            (cfg.rollout.resources, cfg.rollout.num_workers), (cfg.reward.resources, cfg.reward.num_workers)]
    groups = _groups(m)
    for spec, n in asks:
        (custom,) = spec.resources                              # each group selects its pods by one resource
        group = next(g for g in groups if custom in g.get("resources", {}) or custom in _operator_resources(g["rayStartParams"]))
        pods = group["replicas"]
        have = float(group.get("resources", {}).get(custom) or _operator_resources(group["rayStartParams"])[custom])
        assert n * spec.resources[custom] <= pods * have, (custom, n, have)
        assert n * spec.num_gpus <= pods * _container_limit(group, "nvidia.com/gpu"), (custom, "GPUs")
        cpus, asked = pods * _container_limit(group, "cpu"), n * spec.num_cpus
        assert asked + max(2.0, 0.1 * cpus) <= cpus, f"{custom}: actors ask {asked} of the pods' {cpus} CPUs"
