"""Which model a command runs on: the path the config gives, or, where it gives none, the
bootstrapped tiny model of the embedded default (trained first when not cached)."""

from __future__ import annotations

import dataclasses


def _check_local(name: str, path: str) -> None:
    """A path that is plainly local (absolute, ./, ../, ~) must exist: otherwise transformers reads it
    as a hub id and fails deep inside a worker with a message about repo names. `org/name` stays a
    hub id (the paper configs name their checkpoints so)."""
    from pathlib import Path

    from spark_rl.config.checks import ConfigError

    if path and path.startswith(("/", "./", "../", "~")) and not Path(path).expanduser().exists():
        raise ConfigError(f"{name} model: path {path!r} does not exist")


def resolve_model_paths(paths: dict[str, str], bootstrap_config: str,
                        build: list[str] | None = None) -> dict[str, str]:
    """`paths` (model name -> path, "" for none) with every empty one filled by the bootstrap's
    model of that name ("policy", "verifier"). `build`: the models the bootstrap builds (default:
    those of `bootstrap_config` that `paths` leaves empty)."""
    for name, path in paths.items():
        _check_local(name, path)
    if all(paths.values()):
        return dict(paths)
    from spark_rl.bootstrap import BootstrapConfig, bootstrap
    from spark_rl.config import load_config

    bcfg = load_config(BootstrapConfig, bootstrap_config)
    if build is None:       # only the models without a path (and the policy a verifier starts from)
        missing = {name for name, path in paths.items() if not path}
        if "verifier" in missing and bcfg.verifier.init_from == "policy":
            missing.add("policy")
        build = [name for name in bcfg.build if name in missing]
    bcfg = dataclasses.replace(bcfg, build=list(build))
    built = bootstrap(bcfg)
    return {name: path or str(getattr(built, name)) for name, path in paths.items()}


def resolve_model_path(path: str, bootstrap_config: str, name: str = "policy", build: list[str] | None = None) -> str:
    """`path`, or the bootstrap's model `name` (building only it, unless `build` says more)."""
    return resolve_model_paths({name: path}, bootstrap_config, build or [name])[name]
