"""The layers contract (README, Architecture): imports point down only.

    pure logic  ->  engines  ->  actors  ->  drivers

Read from the source with `ast`, every import counted, also those inside functions and under
`TYPE_CHECKING` (a lazy import is still a dependency; it only hides a circle). A new package must
be placed in a layer here. `python tests/test_layers.py` prints the violations without pytest.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# bottom to top; a module may import its own layer and the layers below it
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("pure logic", ("spark_rl.config", "spark_rl.tasks", "spark_rl.formats", "spark_rl.grading",
                    "spark_rl.verification", "spark_rl.rewards", "spark_rl.algos", "spark_rl.metrics",
                    "spark_rl.models", "spark_rl.paths")),
    ("engines", ("spark_rl.engines",)),
    ("actors", ("actors",)),
    ("drivers", ("spark_rl.bootstrap", "spark_rl.trainer", "spark_rl.pipelines", "spark_rl.prm", "spark_rl.commands", "spark_rl.cli")),
]
# what a layer may not import, whatever imports it in turn
FORBIDDEN = {"pure logic": ("ray", "vllm", "deepspeed"), "engines": ("ray",)}
# the config schemas: not even through what they import
SCHEMAS = "spark_rl.config"
SCHEMA_FORBIDDEN = ("torch", "ray", "vllm", "deepspeed", "transformers")


def _modules() -> dict[str, Path]:
    out = {}
    for top in ("spark_rl", "actors"):
        for p in sorted((ROOT / top).rglob("*.py")):
            name = ".".join(p.relative_to(ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = p
    return out


MODULES = _modules()


def _project_module(name: str) -> str | None:
    """The project module an imported name lives in (`spark_rl.config.rl.RLConfig` -> `spark_rl.config.rl`)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


@cache
def imports(module: str) -> tuple[tuple[str, int], ...]:
    """(imported name, line) of every import in `module`, relative imports resolved."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            out.append((base, node.lineno))
            out += [(f"{base}.{a.name}", node.lineno) for a in node.names]
    return tuple(out)


def project_imports(module: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, line in imports(module):
        target = _project_module(name)
        if target and target != module and not module.startswith(target + "."):   # a package's own __init__
            out.setdefault(target, line)
    return out


def layer_of(module: str) -> int | None:
    for i, (_, packages) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in packages):
            return i
    return None


def _where(module: str, line: int) -> str:
    return f"{MODULES[module].relative_to(ROOT)}:{line} ({module})"


def violations() -> list[str]:
    bad = []
    for m in MODULES:
        if m in ("spark_rl", "actors"):
            continue
        if layer_of(m) is None:
            bad.append(f"{m}: in no layer (place its package in tests/test_layers.py LAYERS)")
    for m in MODULES:
        lm = layer_of(m)
        if lm is None:
            continue
        name = LAYERS[lm][0]
        for target, line in project_imports(m).items():
            lt = layer_of(target)
            if lt is not None and lt > lm:
                bad.append(f"{_where(m, line)} imports {target}: {name} may not import {LAYERS[lt][0]} "
                           f"(imports point down only: {' -> '.join(n for n, _ in LAYERS)})")
        for ext, line in imports(m):
            root = ext.split(".")[0]
            if root in FORBIDDEN.get(name, ()):
                bad.append(f"{_where(m, line)} imports {ext}: {name} imports none of {', '.join(FORBIDDEN[name])}")
    bad += schema_violations()
    bad += [f"import circle: {' -> '.join(c + [c[0]])}" for c in cycles()]
    return bad


def schema_violations() -> list[str]:
    """`spark_rl.config` and everything it imports, transitively: none of SCHEMA_FORBIDDEN."""
    bad, seen = [], set()
    todo = [(m, [m]) for m in MODULES if m == SCHEMAS or m.startswith(SCHEMAS + ".")]
    while todo:
        m, chain = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        for ext, line in imports(m):
            if ext.split(".")[0] in SCHEMA_FORBIDDEN:
                bad.append(f"{_where(m, line)} imports {ext}: the config schemas load none of "
                           f"{', '.join(SCHEMA_FORBIDDEN)} (via {' -> '.join(chain)})")
        todo += [(t, chain + [t]) for t in project_imports(m)]
    return bad


def cycles() -> list[list[str]]:
    """Strongly connected components of the module import graph with more than one module."""
    graph = {m: sorted(project_imports(m)) for m in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for m in graph:
        if m not in index:
            visit(m)
    return out


def test_layers_contract():
    bad = violations()
    assert not bad, "layers contract broken:\n  " + "\n  ".join(bad)


def test_contract_sees_what_it_checks():
    # the contract is only as good as its reading of the imports: spot-check known edges
    assert "actors.group" in project_imports("spark_rl.trainer.grpo")
    assert any(name == "ray" for name, _ in imports("actors.group"))
    assert layer_of("spark_rl.trainer.grpo") == 3 and layer_of("spark_rl.config.rl") == 0
    assert set(MODULES) >= {"spark_rl.config.rl", "spark_rl.rewards.variants", "actors.reward"}


def test_config_schemas_load_neither_torch_nor_ray(tmp_path):
    # at run time, too: loading and validating an RLConfig, and `spark-rl ctl swap-reward`
    code = ("import sys\n"
            "from spark_rl.cli import main\n"
            "from spark_rl.config import load_config, save_resolved\n"
            "from spark_rl.config.rl import RLConfig, derive_reward_section\n"
            "cfg = load_config(RLConfig, None, ['reward.kind=process_aware', 'reference.device=cuda:1'])\n"
            "derive_reward_section(cfg.reward, 'random', ['seed=3'])\n"
            f"save_resolved(RLConfig(), {str(tmp_path)!r})\n"
            f"assert main(['ctl', 'swap-reward', 'random', 'seed=3', '--run', {str(tmp_path)!r}]) == 0\n"
            f"assert main(['ctl', 'swap-reward', 'bogus', '--run', {str(tmp_path)!r}]) == 2\n"
            # every stage's schema, loaded and validated from the demo's own config files
            "from spark_rl.config.bootstrap import BootstrapConfig\n"
            "from spark_rl.config.synthesize import SynthesizeConfig\n"
            "from spark_rl.config.prm import TrainPRMConfig, EvalPRMConfig\n"
            "from spark_rl.config.demo import DemoConfig\n"
            "from spark_rl.config.eval import EvalConfig\n"
            "for cls, f in ((BootstrapConfig, 'bootstrap'), (SynthesizeConfig, 'synthesize'),\n"
            "               (TrainPRMConfig, 'train_prm'), (EvalPRMConfig, 'eval_prm'), (DemoConfig, 'demo')):\n"
            "    load_config(cls, f'configs/demo/{f}.yaml')\n"
            "load_config(BootstrapConfig, 'configs/demo/bootstrap.yaml').model_key('verifier')\n"
            "load_config(EvalConfig, None, ['suite=paper'])\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({SCHEMA_FORBIDDEN!r})))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
    assert len(list((tmp_path / "control").glob("*.json"))) == 1       # the valid one was queued


if __name__ == "__main__":
    found = violations()
    print("\n".join(found) or "layers contract holds")
    sys.exit(1 if found else 0)
