"""Where each credential the CLI reads comes from, declared once per credential.

Every credential follows one precedence: the file a flag names, then a
variable holding it, then a variable naming a file. The ``--help`` text that
states it and the error that lists every way to give it are both made here,
from the same four names, so they cannot drift apart or from the code that
reads it. Only :mod:`alertwire._config` is imported: the help text is built
on every command's start-up path.
"""

from __future__ import annotations

from .. import _config
from .._errors import ConfigurationError
from .._secret import Secret

__all__ = ["BIGPANDA_TOKEN", "REST_API_TOKEN", "ROUTING_KEY", "Credential"]


class Credential:
    """One secret the CLI reads: what it is called, and the flag and variables that give it.

    A plain class, not a NamedTuple or dataclass: making one of those costs a cron
    job's ``alertwire trigger`` a few hundred microseconds at start-up, for nothing.
    """

    __slots__ = ("env", "env_file", "flag", "noun", "what")

    def __init__(self, what: str, noun: str, flag: str, env: str, env_file: str) -> None:
        #: The name in error messages ("PagerDuty routing key").
        self.what = what
        #: The short name in ``--help`` ("routing key").
        self.noun = noun
        #: The flag naming a file that holds it.
        self.flag = flag
        #: The variable holding it, and the one naming a file that holds it.
        self.env = env
        self.env_file = env_file

    def sources(self) -> str:
        """The precedence, as the ``--help`` of an option group states it."""
        return (
            f"The {self.noun} comes from {self.flag}, else ${self.env},\n"
            f"else the file named by ${self.env_file}."
        )

    def read(self, path: str | None) -> Secret:
        """From ``path`` (the flag's file), else from the variables; without any of them,
        one error that names every way to give it."""
        if path is not None:
            return _config.read_secret_file(path, what=self.what)
        if not (_config.optional_env(self.env) or _config.optional_env(self.env_file)):
            raise ConfigurationError(
                f"no {self.what}: pass {self.flag} PATH, or set {self.env}"
                f" (or {self.env_file} to a file holding it)"
            )
        return _config.secret_from_env(self.env, self.env_file, what=self.what)


ROUTING_KEY = Credential(
    "PagerDuty routing key",
    "routing key",
    "--routing-key-file",
    _config.ENV_ROUTING_KEY,
    _config.ENV_ROUTING_KEY_FILE,
)
BIGPANDA_TOKEN = Credential(
    "BigPanda token",
    "token",
    "--token-file",
    _config.ENV_BIGPANDA_TOKEN,
    _config.ENV_BIGPANDA_TOKEN_FILE,
)
REST_API_TOKEN = Credential(
    "PagerDuty REST API token",
    "token",
    "--token-file",
    _config.ENV_PAGERDUTY_API_TOKEN,
    _config.ENV_PAGERDUTY_API_TOKEN_FILE,
)
