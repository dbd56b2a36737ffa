import json
import os
import subprocess
import sys


def herald(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "herald", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **env},
    )


def test_invalid_configuration_stops_the_start_naming_the_key():
    result = herald("serve", HERALD_HTTP_PORT="eighty")
    assert result.returncode != 0
    assert "invalid configuration: http.port: expected int, got 'eighty'" in result.stderr


def test_config_prints_effective_values_with_secrets_masked():
    result = herald("config", HERALD_SENDER_TOKEN="top-secret-value", HERALD_DISPATCH_CONCURRENCY="9")
    config = json.loads(result.stdout)
    assert config["sender"]["token"] == "***" and config["dispatch"]["concurrency"] == 9
    assert "top-secret-value" not in result.stdout + result.stderr
