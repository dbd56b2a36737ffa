import pytest

from herald.config import ConfigError, load_config


def test_repository_config_loads_with_every_key():
    config = load_config(env={})
    assert config.http.port == 8080
    assert config.sender.url == "https://probe.fbrq.cloud/v1"
    assert config.mongo.database == "herald"


def test_environment_overrides_any_key_with_its_type():
    config = load_config(
        env={
            "HERALD_DISPATCH_CONCURRENCY": "7",
            "HERALD_PROBE_OUTAGE": "true",
            "HERALD_MONGO_URL": "mongodb://db:27017/other",
            "HERALD_SENDER_TIMEOUT_S": "2.5",
        }
    )
    assert config.dispatch.concurrency == 7
    assert config.probe.outage is True
    assert config.mongo.database == "other"
    assert config.sender.timeout_s == 2.5


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HERALD_HTTP_PORT": "eighty"}, "http.port: expected int"),
        ({"HERALD_HTTP_PORT": "70000"}, "http.port: must be a TCP port"),
        ({"HERALD_DISPATCH_CONCURRENCY": "0"}, "dispatch.concurrency: must be at least 1"),
        ({"HERALD_MONGO_URL": "mongodb://db:27017"}, "mongo.url: must be a mongodb:// URL with the database name"),
        ({"HERALD_LOG_FORMAT": "xml"}, "log.format"),
        ({"HERALD_EMAIL_SEND_AT": "8am"}, "email.send_at: must be a time of day HH:MM"),
        ({"HERALD_EMAIL_TIMEZONE": "Mars/Olympus"}, "email.timezone: must be an IANA time zone name"),
        ({"HERALD_EMAIL_SECURITY": "ssl"}, "email.security: must be none, starttls or tls"),
        ({"HERALD_EMAIL_RECIPIENTS": "ops@example.com, nobody"}, "email.recipients: must be comma-separated"),
        ({"HERALD_EMAIL_ENABLED": "true"}, "email.recipients: required when email.enabled is true"),
    ],
)
def test_invalid_values_fail_with_the_key_named(env, message):
    with pytest.raises(ConfigError, match=message):
        load_config(env=env)


def test_unknown_keys_are_rejected(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("http:\n  prot: 80\n")
    with pytest.raises(ConfigError, match=r"unknown key.*http\.prot"):
        load_config(path, env={})


def test_secrets_never_show_in_repr_or_masked_dump():
    config = load_config(env={"HERALD_SENDER_TOKEN": "s3cr3t-token"})
    assert "s3cr3t-token" not in repr(config)
    assert config.masked()["sender"]["token"] == "***"
    assert "s3cr3t-token" not in str(config.masked())


def test_the_daily_email_is_off_by_default_and_its_password_is_a_secret():
    config = load_config(env={"HERALD_EMAIL_PASSWORD": "smtp-s3cret", "HERALD_EMAIL_RECIPIENTS": "a@x.org, b@y.org"})
    assert config.email.enabled is False and config.email.smtp_host == "127.0.0.1"
    assert config.email.to == ("a@x.org", "b@y.org")
    assert config.masked()["email"]["password"] == "***" and "smtp-s3cret" not in repr(config)
