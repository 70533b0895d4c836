"""Ganga's ``config`` object: ``config['Configuration']['gangadir']``,
``config.Local.location``, ``config['Logging']``, ... read-only, but for the options a
Ganga script sets in its own session (``config.SESSION_OPTIONS``:
``config['Configuration']['resubmitOnlyFailedSubjobs'] = False``).

The values come from this session's settings (``ganga_like.config``: environment
variables), mapped to Ganga's section and option names where they mean something.
An unknown section or option, or an assignment, is one line naming the choices.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..config import GANGA_OPTION_SOURCES, SESSION_OPTIONS, Config, ganga_sections, set_session_option
from ..errors import ConfigurationError


def _current() -> Config:
    from ..model import binding

    session = binding.get_default()
    config = getattr(session, "config", None)
    return config if isinstance(config, Config) else Config.from_env()


class ConfigSection:
    """One section: ``section['option']``, ``section.option``, ``dict(section)``."""

    def __init__(self, name: str, options: dict[str, tuple[object, str]]) -> None:
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_options", options)

    def __getitem__(self, option: str) -> Any:
        if option not in self._options:
            raise ConfigurationError(
                f"config['{self._name}'] has no option {option!r}; its options are: "
                + ", ".join(self._options), value=option, valid=tuple(self._options))
        return self._options[option][0]

    def __getattr__(self, option: str) -> Any:
        if option.startswith("__"):
            raise AttributeError(option)
        return self[option]

    def __setitem__(self, option: str, value: Any) -> None:
        self[option]  # an unknown option is named as such first
        if (self._name, option) in SESSION_OPTIONS:
            set_session_option(self._name, option, value)
            self._options[option] = (value, self._options[option][1])
            return
        source = GANGA_OPTION_SOURCES.get((self._name, option), "")
        how = (f"set {source} in the environment before the session starts" if source
               else "it is fixed here")
        raise ConfigurationError(
            f"config['{self._name}']['{option}'] cannot be changed in a running session; "
            f"{how}", value=value)

    __setattr__ = __setitem__

    def __contains__(self, option: object) -> bool:
        return option in self._options

    def __iter__(self) -> Iterator[str]:
        return iter(self._options)

    def keys(self) -> list[str]:
        return list(self._options)

    def items(self) -> list[tuple[str, Any]]:
        return [(k, v[0]) for k, v in self._options.items()]

    def getEffectiveOption(self, option: str) -> Any:  # noqa: N802 (Ganga's name)
        return self[option]

    def __repr__(self) -> str:
        lines = [f"{self._name}"]
        for option, (value, what) in self._options.items():
            lines.append(f"  {option} = {value!r}\n      {what}")
        return "\n".join(lines)


class GangaConfig:
    """Ganga's ``config``: ``config['Configuration']['gangadir']``, ``config.Local``."""

    def _sections(self) -> dict[str, ConfigSection]:
        return {name: ConfigSection(name, options)
                for name, options in ganga_sections(_current()).items()}

    def __getitem__(self, name: str) -> ConfigSection:
        sections = self._sections()
        if name not in sections:
            raise ConfigurationError(
                f"config has no section {name!r}; its sections are: " + ", ".join(sections),
                value=name, valid=tuple(sections))
        return sections[name]

    def __getattr__(self, name: str) -> ConfigSection:
        if name.startswith("__"):
            raise AttributeError(name)
        return self[name]

    def __contains__(self, name: object) -> bool:
        return name in self._sections()

    def __iter__(self) -> Iterator[str]:
        return iter(self._sections())

    def keys(self) -> list[str]:
        return list(self._sections())

    def __repr__(self) -> str:
        return "\n\n".join(repr(section) for section in self._sections().values())


config = GangaConfig()
