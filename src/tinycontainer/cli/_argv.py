"""Argument vectors before argparse sees them.

Two jobs argparse cannot do on its own:

* The seed (TinyContainer, Go ``flag`` package) documented single-dash long flags: ``-name X``,
  ``-fs DIR``, ``-memlimit 64m``, ``-cpuset 0``, ``-cpushare 512``, ``-net``, ``-tty`` (and Go's
  ``-flag=value`` / ``-bool=false`` forms). argparse would read ``-name`` as ``-n -a -m -e``.
  :func:`normalize_seed_flag` rewrites them to our long options with the seed's meaning.
* ``run IMAGE CMD...`` and ``exec NAME CMD...`` stop reading options at the first positional
  word, like docker (pflag ``SetInterspersed(false)``): ``run busybox ls -l`` passes ``-l`` to
  ``ls``. :func:`split_options` does that scan, using the parser's own table of options.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from .._errors import SpecError

# seed flag -> (our option, value for a bare boolean flag or None when the flag takes a value)
SEED_FLAGS: dict[str, tuple[str, str | None]] = {
    "-name": ("--name", None),
    "-fs": ("--rootfs", None),
    "-memlimit": ("--memory", None),
    "-cpuset": ("--cpuset-cpus", None),
    "-cpushare": ("--cpu-shares", None),
    # The seed's ``net``: "Whether to init network. Share your machine." -> the host's network.
    "-net": ("--network", "host"),
    # The seed's ``tty``: the container talks to the caller's terminal -> -t -i.
    "-tty": ("--tty", ""),
    "-help": ("--help", ""),
}

_FALSE_WORDS = {"false", "0", "f", "no"}
_TRUE_WORDS = {"true", "1", "t", "yes"}


def normalize_seed_flag(token: str) -> list[str] | None:
    """The replacement tokens for one seed-style flag, or None when ``token`` is not one.

    A value-taking flag comes back without its value when written ``-name X`` (the caller
    takes the next word) and with it for ``-name=X``."""
    if not token.startswith("-") or token.startswith("--"):
        return None
    word, eq, value = token.partition("=")
    if word not in SEED_FLAGS:
        return None
    option, bare = SEED_FLAGS[word]
    if bare is None:
        return [f"{option}={value}"] if eq else [option]
    if eq:
        lowered = value.lower()
        if lowered in _FALSE_WORDS:
            return ["--network=none"] if word == "-net" else []
        if lowered not in _TRUE_WORDS:
            raise SpecError(f"{word}={value}: expected true or false")
    if word == "-net":
        return [f"{option}={bare}"]
    if word == "-tty":
        return ["--tty", "--interactive"]
    return [option]


@dataclass
class Split:
    options: list[str] = field(default_factory=list)
    positionals: list[str] = field(default_factory=list)
    dashdash: bool = False
    """the options ended at ``--`` (not at a positional word)"""


def _takes_value(parser: argparse.ArgumentParser, option: str) -> bool | None:
    action = parser._option_string_actions.get(option)
    if action is None:
        return None
    return action.nargs != 0


def _with_value(parser: argparse.ArgumentParser, option: str, value: str) -> str:
    """One token ``--long=value``: argparse would take a value such as ``-1`` or ``--x`` for
    another option if it came as a separate word."""
    action = parser._option_string_actions[option]
    longs = [o for o in action.option_strings if o.startswith("--")]
    return f"{longs[0] if longs else option}={value}"


def split_options(parser: argparse.ArgumentParser, argv: list[str], command: str) -> Split:
    """Options up to the first positional word (or ``--``); everything after is returned as is.

    Raises SpecError naming an unknown option, or an option missing its value."""
    out = Split()
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            out.dashdash = True
            out.positionals = argv[i + 1 :]
            return out
        if not token.startswith("-") or token == "-":
            out.positionals = argv[i:]
            return out
        seed = normalize_seed_flag(token)
        if seed is not None:
            if seed and seed[-1] in ("--name", "--rootfs", "--memory", "--cpuset-cpus", "--cpu-shares"):
                if i + 1 >= len(argv):
                    raise SpecError(f"{token} needs a value (tcontainer {command} --help)")
                out.options.append(_with_value(parser, seed[-1], argv[i + 1]))
                i += 2
            else:
                out.options += seed
                i += 1
            continue
        if token.startswith("--"):
            name = token.partition("=")[0]
            wants = _takes_value(parser, name)
            if wants is None:
                raise SpecError(f"unknown option {name} for 'tcontainer {command}' (see tcontainer {command} --help)")
            if wants and "=" not in token:
                if i + 1 >= len(argv):
                    raise SpecError(f"{name} needs a value (tcontainer {command} --help)")
                out.options.append(_with_value(parser, name, argv[i + 1]))
                i += 2
                continue
            if wants:
                out.options.append(_with_value(parser, name, token.partition("=")[2]))
            else:
                out.options.append(token)
            i += 1
            continue
        # A cluster of short options: -it, -dit, -m64m, -eKEY=VALUE, -e=KEY=VALUE.
        j = 1
        consumed_next = False
        while j < len(token):
            short = "-" + token[j]
            wants = _takes_value(parser, short)
            if wants is None:
                raise SpecError(
                    f"unknown option {short} (in {token}) for 'tcontainer {command}' (see tcontainer {command} --help)"
                )
            if not wants:
                out.options.append(short)
                j += 1
                continue
            rest = token[j + 1 :]
            if rest:
                out.options.append(_with_value(parser, short, rest[1:] if rest.startswith("=") else rest))
            else:
                if i + 1 >= len(argv):
                    raise SpecError(f"{short} needs a value (tcontainer {command} --help)")
                out.options.append(_with_value(parser, short, argv[i + 1]))
                consumed_next = True
            break
        i += 2 if consumed_next else 1
    return out
