"""`LearnerWorker` (one DeepSpeed rank) and `LearnerGroup` (N ranks seen as one object).

Rank 0 publishes its address and a free port; all ranks then join torch.distributed together
(gloo on CPU, nccl on GPU). The driver calls the group; the group splits batches over ranks.
"""

from __future__ import annotations

import os
import time
from typing import Any

import ray

from actors.group import shard_sizes
from actors.placement import combined, gang_placement_group, in_bundle
from spark_rl.config.resources import ResourceSpec
from spark_rl.engines.collectives import free_port
from spark_rl.engines.weight_transfer import FlatBucket, SharedWeightFile, layout_of, write_tensors


def get_all(refs: list) -> list:
    """`ray.get` of one call per rank that fails fast: the first rank error is raised at once,
    instead of waiting on ranks that may hang in a collective with a dead peer."""
    waiting = list(refs)
    while waiting:
        done, waiting = ray.wait(waiting, num_returns=1)
        ray.get(done[0])
    return ray.get(list(refs))


@ray.remote
class LearnerWorker:
    def __init__(self, rank: int, world_size: int):
        self.rank, self.world_size = rank, world_size
        self.learner = None

    def ping(self) -> int:
        return self.rank

    def address(self) -> tuple[str, int]:
        return ray.util.get_node_ip_address(), free_port()

    def setup(self, model_path: str, cfg, master_addr: str, master_port: int) -> dict:
        os.environ.update(MASTER_ADDR=master_addr, MASTER_PORT=str(master_port), RANK=str(self.rank),
                          WORLD_SIZE=str(self.world_size), LOCAL_RANK="0")
        return self.reset(model_path, cfg)

    def reset(self, model_path: str, cfg) -> dict:
        """A new `Learner` (model, optimizer, schedule) in this process, on the process group it
        already joined: the next model costs its load, not a process start and a rendezvous."""
        import gc

        from spark_rl.engines.learner import Learner

        self.learner = None
        gc.collect()
        self.learner = Learner(model_path, cfg, rank=self.rank, world_size=self.world_size)
        return {"rank": self.rank, "pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id()}

    def call(self, method: str, *args, **kwargs) -> Any:
        """Run any `Learner` method on this rank (the group makes every rank take part)."""
        return getattr(self.learner, method)(*args, **kwargs)

    def push_weights(self, rollout_handles: list, bucket_bytes: int, version: int,
                     transport: str = "auto") -> dict:
        """Send every weight to the rollout workers, then make them load it at once (commit).

        Every rank walks the buckets (ZeRO-3 gathers are collective); rank 0 sends. Workers on
        rank 0's node read a reusable /dev/shm file the learner writes in place (one memcpy);
        workers elsewhere get one object-store put per bucket (`transport="object_store"` forces
        that for all)."""
        t0 = time.perf_counter()
        if self.rank != 0:
            for _ in self.learner.iter_weight_buckets(bucket_bytes):
                pass
            return {}
        local, remote = self._split_by_node(rollout_handles, transport)
        shm = self._shared_file() if local else None
        slot_of = {s.name: s for s in self._shm_slots} if local else {}
        staged, nbytes, nbuckets = [], 0, 0
        for bucket in self.learner.iter_weight_buckets(bucket_bytes):
            nbuckets += 1
            nbytes += sum(t.numel() * t.element_size() for _, t in bucket)
            if shm is not None:
                write_tensors(shm.buffer, [slot_of[n] for n, _ in bucket], [t for _, t in bucket])
            if remote:
                ref = ray.put(FlatBucket.pack(bucket))
                staged += [h.stage_flat.remote(ref) for h in remote]
        ray.get(staged)
        t1 = time.perf_counter()
        commits = [h.commit_weights.remote(version) for h in remote]
        if shm is not None:
            commits += [h.load_shared.remote(str(shm.path), shm.nbytes, self._shm_slots, version) for h in local]
        ray.get(commits)
        return {"bytes": nbytes, "buckets": nbuckets, "local_workers": len(local), "remote_workers": len(remote),
                "transfer_s": t1 - t0, "commit_s": time.perf_counter() - t1, "sync_s": time.perf_counter() - t0}

    def _split_by_node(self, handles: list, transport: str) -> tuple[list, list]:
        if transport == "object_store" or not SharedWeightFile.available():
            return [], list(handles)
        here = ray.get_runtime_context().get_node_id()
        nodes = ray.get([h.node_id.remote() for h in handles])
        return [h for h, n in zip(handles, nodes) if n == here], [h for h, n in zip(handles, nodes) if n != here]

    def _shared_file(self) -> SharedWeightFile:
        slots, total = layout_of(self.learner.weight_specs())
        if getattr(self, "_shm", None) is None or self._shm_slots != slots:
            self.close_shared_file()
            self._shm, self._shm_slots = SharedWeightFile(SharedWeightFile.new_path(), total, create=True), slots
        return self._shm

    def close_shared_file(self) -> None:
        if getattr(self, "_shm", None) is not None:
            self._shm.close(unlink=True)
            self._shm = None

    def __del__(self):
        self.close_shared_file()


class LearnerGroup:
    """N learner ranks behind one interface. Methods mirror `Learner`'s; batch methods take the
    GLOBAL batch and split it across ranks (contiguous, balanced)."""

    def __init__(self, model_path: str, cfg, num_ranks: int = 1, resources: ResourceSpec | None = None,
                 env: dict[str, str] | None = None, colocate: ResourceSpec | None = None):
        """`colocate`: resources reserved next to each rank for one colocated worker (see
        `colocated_options`), e.g. a reference worker sharing the rank's GPU."""
        self.model_path, self.cfg, self.num_ranks = model_path, cfg, num_ranks
        spec = resources or ResourceSpec()
        self.colocate = colocate
        self.pg = gang_placement_group(combined(spec, colocate), num_ranks, name=None)
        self.workers = [
            LearnerWorker.options(num_cpus=spec.num_cpus, num_gpus=spec.num_gpus, resources=dict(spec.resources),
                                  runtime_env={"env_vars": dict(env or {})}, **in_bundle(self.pg, r)
                                  ).remote(r, num_ranks)
            for r in range(num_ranks)
        ]
        try:
            addr, port = ray.get(self.workers[0].address.remote())
            self.placement = get_all([w.setup.remote(model_path, cfg, addr, port) for w in self.workers])
        except BaseException:
            self.shutdown()    # a rank that failed to start leaves neither ranks nor its placement group
            raise

    def reset(self, model_path: str, cfg) -> None:
        """Start over from `model_path` with `cfg` on the same ranks (e.g. the next Stage 2 student)."""
        self.model_path, self.cfg = model_path, cfg
        self.placement = get_all([w.reset.remote(model_path, cfg) for w in self.workers])

    def colocated_options(self, index: int) -> dict:
        """Ray options that place a worker in rank `index % num_ranks`'s bundle (same node, and
        on GPU clusters the same device), using the `colocate` resources reserved there."""
        if self.colocate is None:
            raise ValueError("this LearnerGroup was built without `colocate` resources")
        spec = self.colocate
        return {"num_cpus": spec.num_cpus, "num_gpus": spec.num_gpus, "resources": dict(spec.resources),
                **in_bundle(self.pg, index % self.num_ranks)}

    # ---- helpers ----------------------------------------------------------------------------
    def _split(self, samples: list) -> list[list]:
        sizes = shard_sizes(len(samples), self.num_ranks) if samples else [0] * self.num_ranks
        parts, start = [], 0
        for s in sizes:
            parts.append(samples[start:start + s])
            start += s
        return parts

    def _all(self, method: str, *args, **kwargs) -> list:
        return get_all([w.call.remote(method, *args, **kwargs) for w in self.workers])

    def dead_ranks(self, timeout_s: float = 10.0) -> list[int]:
        """Ranks whose actor is dead or does not answer within `timeout_s` (e.g. hung in a
        collective with a dead peer)."""
        refs = [w.ping.remote() for w in self.workers]
        dead = []
        for r, ref in enumerate(refs):
            try:
                ray.get(ref, timeout=timeout_s)
            except Exception:
                dead.append(r)
        return dead

    # ---- training ---------------------------------------------------------------------------
    def sft_step(self, samples: list[dict]) -> dict:
        parts = self._split(samples)
        return get_all([w.call.remote("sft_step", p) for w, p in zip(self.workers, parts)])[0]

    def pg_step(self, samples: list[dict], loss_fn, epochs: int = 1) -> dict:
        parts = self._split(samples)
        return get_all([w.call.remote("pg_step", p, loss_fn, epochs=epochs) for w, p in zip(self.workers, parts)])[0]

    def compute_logprobs(self, seqs: list[list[int]]) -> list[list[float]]:
        if getattr(self.cfg, "zero_stage", 0) == 3:   # ZeRO-3 forwards are collective: all ranks, same input
            return self._all("compute_logprobs", seqs)[0]
        return self._sharded("compute_logprobs", seqs)

    def reference_logprobs(self, seqs: list[list[int]]) -> list[list[float]]:
        """The attached reference's logprobs (`Learner.attach_reference`), each rank its share."""
        return self._sharded("reference_logprobs", seqs)

    def _sharded(self, method: str, items: list) -> list:
        """`method` on each rank's contiguous share of `items`; the results in the items' order."""
        outs = get_all([w.call.remote(method, p) for w, p in zip(self.workers, self._split(items))])
        return [x for part in outs for x in part]

    # ---- weights and checkpoints ------------------------------------------------------------
    def push_weights(self, rollout_handles: list, bucket_bytes: int = 64 << 20, version: int = 0,
                     transport: str = "auto") -> dict:
        outs = get_all([w.push_weights.remote(rollout_handles, bucket_bytes, version, transport)
                        for w in self.workers])
        return outs[0]

    def save_checkpoint(self, path: str, client_state: dict) -> None:
        self._all("save_checkpoint", path, client_state)

    def load_checkpoint(self, path: str) -> dict:
        return self._all("load_checkpoint", path)[0]

    def export_hf(self, out_dir: str) -> str:
        return str(self._all("export_hf", out_dir)[0])

    def call_all(self, method: str, *args, **kwargs) -> list:
        return self._all(method, *args, **kwargs)

    def shutdown(self) -> None:
        """Stop every rank. Ranks that are dead or hung (a peer died in a collective) are killed
        without waiting; the /dev/shm weight file of a rank on this node is removed either way."""
        dead = set(self.dead_ranks(timeout_s=2.0)) if self.workers else set()
        try:
            ray.get([w.close_shared_file.remote() for r, w in enumerate(self.workers) if r not in dead], timeout=10)
        except Exception:
            pass
        for w in self.workers:
            try:
                ray.kill(w, no_restart=True)
            except Exception:
                pass
        from spark_rl.engines.weight_transfer import SHM_DIR

        for p in getattr(self, "placement", None) or []:
            for leftover in SHM_DIR.glob(f"spark-rl-weights-{p.get('pid')}-*"):
                leftover.unlink(missing_ok=True)
        try:
            ray.util.remove_placement_group(self.pg)
        except Exception:
            pass
        self.workers = []
