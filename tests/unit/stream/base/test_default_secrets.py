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


@pytest.mark.parametrize("url, password", [
    ("postgresql://app:postgres@db.example.com:5432/finsent", "postgres"),
    ("postgresql://app:password@10.0.0.5/finsent", "password"),
    ("postgresql://app:app@10.0.0.5/finsent", "app"),  # password = user name
    ("host=db.internal port=5432 dbname=finsent user=app password=postgres", "postgres"),
    ("host=db.internal dbname=finsent user=app password='password'", "password"),
    ("postgresql://app@db.example.com/finsent?password=postgres", "postgres"),
    ("postgresql://app:password@127.0.0.1,db.example.com/finsent", "password"),  # one host is remote
])
def test_a_remote_database_with_a_default_password_is_refused_without_showing_it(url, password):
    s = settings(database_url=url, writer_password="w-Strong-1", analyst_password="a-Strong-1")
    assert default_secrets_outside_loopback(s) == ["the password in database_url (FINSENT_DATABASE_URL)"]
    with pytest.raises(ConfigError) as exc:
        refuse_default_secrets(s)
    message = str(exc.value)
    assert "not on the loopback" in message and "***" in message, message
    # every way the password can stand in a connection string (the shipped defaults are also plain
    # words of the message, so the forms are checked, not the bare word); issue 24: the key=value form
    # and the URL's ?password= were printed in clear
    for leak in (f":{password}@", f"password={password}", f"password='{password}'"):
        assert leak not in message, message


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
