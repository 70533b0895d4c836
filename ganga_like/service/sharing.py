"""Who may read what: private by default, outputs opened to one group on request.

By default the service's umask is 077: the root is 0700 and every file 0600, so no
other user reads job definitions (their environments) or outputs. With
``GANGA_LIKE_OUTPUT_GROUP=<group>`` (one of the user's groups), the outputs are
opened to that group and nothing else is: the root and the workspace belong to the
group (0750, the workspace setgid so that every job's directory inherits it), the
umask becomes 027, so outputs are 0640 and directories 0750; the repository
directory stays 0700 (the database, with the environments, is never shared) and the
queue log, the service's log, its state and its sockets keep their explicit 0600.
"""

from __future__ import annotations

import grp
import os

from ..errors import ConfigurationError

PRIVATE_UMASK = 0o077
SHARED_UMASK = 0o027


def output_group(environ: dict | None = None) -> int | None:
    """The group id outputs are opened to, or None (private); one line if invalid."""
    env = os.environ if environ is None else environ
    name = env.get("GANGA_LIKE_OUTPUT_GROUP", "")
    if not name:
        return None
    mine = sorted({grp.getgrgid(g).gr_name for g in os.getgroups() + [os.getgid()]})
    try:
        gid = grp.getgrnam(name).gr_gid
    except KeyError:
        gid = None
    if gid is None or grp.getgrgid(gid).gr_name not in mine:
        raise ConfigurationError(
            f"GANGA_LIKE_OUTPUT_GROUP={name!r} is not one of your groups; choose one of: "
            f"{', '.join(mine)} (or unset it to keep outputs private)")
    return gid


def apply(root: str, workspace: str, repository_dir: str, gid: int | None,
          root_is_ours: bool = True) -> None:
    """Set the umask and the modes of the root's directories for ``gid`` (None: private).

    ``root_is_ours``: ganga_like made the root. If not (GANGA_LIKE_DIR names a directory
    the user made), the root's mode and group are the user's and left alone; what
    ganga_like makes inside it is still private (or opened to ``gid``)."""
    os.umask(PRIVATE_UMASK if gid is None else SHARED_UMASK)
    os.makedirs(repository_dir, mode=0o700, exist_ok=True)
    os.chmod(repository_dir, 0o700)
    owned = [root] if root_is_ours else []
    if gid is None:
        for path in owned + ([workspace] if os.path.isdir(workspace) else []):
            os.chmod(path, 0o700)
        return
    os.makedirs(workspace, exist_ok=True)
    for path, mode in [(p, 0o750) for p in owned] + [(workspace, 0o2750)]:
        os.chown(path, -1, gid)
        os.chmod(path, mode)
