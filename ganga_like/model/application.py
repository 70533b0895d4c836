"""Applications: what a (sub)job runs."""

from __future__ import annotations

from typing import Any

from .component import Component, Field, FrozenDict, FrozenList, check_env, check_nonempty_str, check_str_list


def _check_exe(value: Any) -> str:
    from .files import File

    if isinstance(value, File):  # Ganga's Executable(exe=File('run.sh')): run that file
        value = value.name
    return check_nonempty_str(value)


class Executable(Component):
    """Run a program with arguments and extra environment variables.

    The program is executed directly, never through a shell: each argument arrives
    verbatim (spaces, quotes, ``$HOME`` and ``;`` are not interpreted). ``exe`` is a
    path or a command name looked up on ``PATH``.
    """

    _category = "applications"

    exe = Field("echo", _check_exe, "a program path or name, e.g. '/bin/echo', or File('run.sh')",
                "the program to run")
    args = Field(FrozenList(("Hello World",)), check_str_list, "a list of strings, e.g. ['-n', '5']",
                 "its arguments (edited in place or assigned: checked either way)")
    env = Field(FrozenDict(), check_env, "a dict of variable names to strings, e.g. {'SEED': '7'}",
                "variables added to the job's environment")

    def command(self) -> list[str]:
        return [self.exe, *self.args]
