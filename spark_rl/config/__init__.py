from spark_rl.config.loader import (
    ConfigError,
    config_hash,
    load_config,
    require,
    require_choice,
    save_resolved,
    to_dict,
    to_yaml,
)

__all__ = ["ConfigError", "config_hash", "load_config", "require", "require_choice", "save_resolved",
           "to_dict", "to_yaml"]
