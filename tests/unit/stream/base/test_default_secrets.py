"""Outside the loopback stack the pipeline refuses to start with the shipped default passwords."""

import pytest

from stream.base.config import ConfigError, default_secrets_outside_loopback, load_settings, refuse_default_secrets


def settings(**env):
    return load_settings({f"FINSENT_{k.upper()}": v for k, v in env.items()})


@pytest.mark.parametrize("url", [
    None,  # the local stack
    "postgresql://finsent:finsent@127.0.0.1:5432/finsent",
    "postgresql://finsent:finsent@127.0.0.7/finsent",
    "postgresql://finsent:finsent@localhost/finsent",
    "postgresql://finsent:finsent@[::1]:5432/finsent",
    "host=/var/run/postgresql dbname=finsent user=finsent password=finsent",
    "postgresql://finsent@/finsent",
])
def test_loopback_and_local_stack_keep_the_defaults(url):
    s = settings(database_url=url) if url else settings()
    assert default_secrets_outside_loopback(s) == []
    refuse_default_secrets(s)


@pytest.mark.parametrize("url", [
    "postgresql://finsent:finsent@db.example.com:5432/finsent",
    "postgresql://finsent:postgres@10.0.0.5/finsent",
    "postgresql://app:app@10.0.0.5/finsent",  # password = user name
    "host=db.internal port=5432 dbname=finsent user=finsent password=finsent",
    "postgresql://finsent:finsent@127.0.0.1,db.example.com/finsent",  # one host is remote
])
def test_a_remote_database_with_a_default_password_is_refused(url):
    s = settings(database_url=url, writer_password="w-Strong-1", analyst_password="a-Strong-1")
    assert default_secrets_outside_loopback(s) == ["the password in database_url (FINSENT_DATABASE_URL)"]
    with pytest.raises(ConfigError) as exc:
        refuse_default_secrets(s)
    assert "password" in str(exc.value) and ":***@" in str(exc.value) or "password=***" in str(exc.value) \
        or "host=db.internal" in str(exc.value)
    assert ":finsent@" not in str(exc.value) and ":postgres@" not in str(exc.value)


def test_role_passwords_left_at_default_are_refused_too():
    s = settings(database_url="postgresql://finsent:S3cret-long@db.example.com/finsent")
    assert default_secrets_outside_loopback(s) == ["writer_password (FINSENT_WRITER_PASSWORD)",
                                                   "analyst_password (FINSENT_ANALYST_PASSWORD)"]
    ok = settings(database_url="postgresql://finsent:S3cret-long@db.example.com/finsent",
                  writer_password="w-Strong-1", analyst_password="a-Strong-1")
    assert default_secrets_outside_loopback(ok) == []


def test_the_worker_refuses_before_touching_anything():
    from stream.wiring import build_parts

    s = settings(database_url="postgresql://finsent:finsent@192.0.2.1:5432/finsent")  # TEST-NET: never reached
    with pytest.raises(ConfigError, match="not on the loopback"):
        build_parts(s)
