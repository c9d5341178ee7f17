"""Keeping the storage password out of configs, logs and run folders.

A password typed into `study.storage=...` is moved into $NAS_STORAGE_PASSWORD of the
process before Hydra sees the override, so Hydra never prints or saves it; the URL gets
it back only when the storage is opened. Messages mask it as `***`.
"""

from __future__ import annotations

import os

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

PASSWORD_ENV = "NAS_STORAGE_PASSWORD"


def with_password(storage: str) -> str:
    """`storage` with the password from $NAS_STORAGE_PASSWORD filled in, when the URL
    names a user but no password."""
    url = make_url(storage)
    if url.username and url.password is None and os.environ.get(PASSWORD_ENV):
        url = url.set(password=os.environ[PASSWORD_ENV])
    return url.render_as_string(hide_password=False)


def without_password(storage: str) -> str:
    """`storage` with its password (if any) replaced by `***`, for logs and messages."""
    try:
        return make_url(storage).render_as_string(hide_password=True)
    except ArgumentError:  # not a URL at all, so no password to find in it
        return storage


def move_password_to_env(storage: str) -> str:
    """Take the password out of a storage URL given on the command line, into
    $NAS_STORAGE_PASSWORD of this process, so that Hydra never prints or saves it.
    Returns the URL without the password (`storage` unchanged if it has none)."""
    try:
        url = make_url(storage)
    except ArgumentError:  # reported as a bad URL when the study is opened
        return storage
    if url.password is None:
        return storage
    os.environ[PASSWORD_ENV] = str(url.password)
    return url._replace(password=None).render_as_string(hide_password=False)  # set() keeps it


def hide_secret(message: str) -> str:
    """`message` with the storage password (as this process knows it) replaced by `***`."""
    password = os.environ.get(PASSWORD_ENV)
    return message.replace(password, "***") if password else message
