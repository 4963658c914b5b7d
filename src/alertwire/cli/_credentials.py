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
    """One secret the CLI reads: its variables and name, as ``from_env()`` reads them
    (:class:`alertwire._config.Credential`), and the flag naming a file that holds it.

    A plain class, not a NamedTuple or dataclass: making one of those costs a cron
    job's ``alertwire trigger`` a few hundred microseconds at start-up, for nothing.
    """

    __slots__ = ("flag", "noun", "variables")

    def __init__(self, variables: _config.Credential, noun: str, flag: str) -> None:
        #: The name in error messages ("PagerDuty routing key") and the variable holding
        #: it and the one naming a file that holds it: the library's, declared once.
        self.variables = variables
        #: The short name in ``--help`` ("routing key").
        self.noun = noun
        #: The flag naming a file that holds it.
        self.flag = flag

    def sources(self) -> str:
        """The precedence, as the ``--help`` of an option group states it."""
        env, env_file = self.variables.variable, self.variables.file_variable
        return (
            f"The {self.noun} comes from {self.flag}, else ${env},\n"
            f"else the file named by ${env_file}."
        )

    def read(self, path: str | None) -> Secret:
        """From ``path`` (the flag's file), else from the variables; without any of them,
        one error that names every way to give it."""
        what, env, env_file = (
            self.variables.what,
            self.variables.variable,
            self.variables.file_variable,
        )
        if path is not None:
            return _config.read_secret_file(path, what=what)
        if not (_config.optional_env(env) or _config.optional_env(env_file)):
            raise ConfigurationError(
                f"no {what}: pass {self.flag} PATH, or set {env} (or {env_file} to a file holding it)"
            )
        return self.variables.from_env()


ROUTING_KEY = Credential(_config.ROUTING_KEY, "routing key", "--routing-key-file")
BIGPANDA_TOKEN = Credential(_config.BIGPANDA_TOKEN, "token", "--token-file")
REST_API_TOKEN = Credential(_config.PAGERDUTY_API_TOKEN, "token", "--token-file")
