"""A storage password stays out of configs, messages and run folders."""

from __future__ import annotations

import pytest

from nas.search.secrets import PASSWORD_ENV, hide_secret, move_password_to_env, with_password
from tests.conftest import run_nas

URL = "postgresql+psycopg2://nas:s3cr%40t@db.example:5432/studies"


@pytest.fixture(autouse=True)
def no_password_in_env(monkeypatch):
    monkeypatch.delenv(PASSWORD_ENV, raising=False)


def test_the_password_moves_from_the_url_to_the_environment_and_back():
    bare = move_password_to_env(URL)
    assert bare == "postgresql+psycopg2://nas@db.example:5432/studies"
    assert hide_secret("auth failed for s3cr@t") == "auth failed for ***"
    assert with_password(bare) == URL


def test_urls_without_a_password_are_left_alone():
    assert move_password_to_env("sqlite:///outputs/nas.db") == "sqlite:///outputs/nas.db"
    assert move_password_to_env("not a url") == "not a url"
    assert with_password("postgresql://nas@host/db") == "postgresql://nas@host/db"
    assert hide_secret("nothing to hide") == "nothing to hide"


def test_the_printed_config_holds_no_password(tmp_path):
    result = run_nas("search", "+space=cnn", f"study.storage={URL}", "--cfg", "job", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "storage: postgresql+psycopg2://nas@db.example:5432/studies" in result.stdout
    assert "s3cr" not in result.stdout + result.stderr
