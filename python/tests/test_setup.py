"""What an app needs set up around it: --app-dir (where it is imported from),
--env-file (its environment) and --log-config (its logging). A mistake in any of them
stops the server at once with status 2, naming the flag."""

import json

import pytest

from conftest import Server, request, wait_file


def refused(*extra: str) -> Server:
    server = Server("wsgi_app:app", extra=list(extra))
    assert server.proc.wait(20) == 2
    return server


def test_app_dir_is_searched_first(serve, tmp_path):
    # A module of the same name as the test apps' one: --app-dir's wins.
    (tmp_path / "wsgi_app.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'from the app dir']\n")
    server = serve("wsgi_app:app", extra=["--app-dir", str(tmp_path)])
    assert request(server, "GET", "/")[::2] == (200, b"from the app dir")


def test_a_missing_app_dir_is_refused(tmp_path):
    refused("--app-dir", str(tmp_path / "nowhere")).wait_for("--app-dir .*not a directory",
                                                             stderr=True)


def test_env_file_sets_variables_the_environment_does_not(serve, tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text('# settings\nHW_GREETING="from the env file"\nexport HW_KEPT=file\n')
    monkeypatch.setenv("HW_KEPT", "process")
    monkeypatch.delenv("HW_GREETING", raising=False)
    server = serve("wsgi_app:app", extra=["--env-file", str(env_file)])
    assert request(server, "GET", "/getenv?HW_GREETING")[2] == b"from the env file"
    assert request(server, "GET", "/getenv?HW_KEPT")[2] == b"process"


def test_env_files_in_order_the_first_wins(serve, tmp_path, monkeypatch):
    first, second = tmp_path / "first.env", tmp_path / "second.env"
    first.write_text("HW_GREETING=first\n")
    second.write_text("HW_GREETING=second\nHW_KEPT=second\n")
    monkeypatch.delenv("HW_GREETING", raising=False)
    monkeypatch.delenv("HW_KEPT", raising=False)
    # Granian's spelling, then uvicorn's: both repeatable, one list.
    server = serve("wsgi_app:app", extra=["--env-files", str(first), "--env-file", str(second)])
    assert request(server, "GET", "/getenv?HW_GREETING")[2] == b"first"
    assert request(server, "GET", "/getenv?HW_KEPT")[2] == b"second"


def test_working_dir_is_where_the_app_and_relative_paths_are_found(serve, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "site_app.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [open('greeting.txt', 'rb').read()]\n")
    (site / "greeting.txt").write_text("from the working dir")
    (site / "relative.toml").write_text("[server]\nbacklog = 64\n")
    server = serve("site_app:app", cwd=tmp_path,
                   extra=["--working-dir", str(site), "--config", "relative.toml"])
    assert request(server, "GET", "/")[::2] == (200, b"from the working dir")
    refused("--working-dir", str(tmp_path / "nowhere")).wait_for(
        "--working-dir .*No such file or directory", stderr=True)


def test_a_missing_env_file_is_refused(tmp_path):
    refused("--env-file", str(tmp_path / ".env")).wait_for("--env-file .*no such file",
                                                           stderr=True)


LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"custom": {"format": "CUSTOM %(levelname)s %(message)s"}},
    "handlers": {"file": {"class": "logging.FileHandler", "formatter": "custom",
                          "filename": "PLACEHOLDER"}},
    "loggers": {"testapp": {"handlers": ["file"], "level": "INFO"}},
}

INI = """[loggers]
keys=root,testapp
[handlers]
keys=file
[formatters]
keys=custom
[logger_root]
handlers=
[logger_testapp]
level=INFO
handlers=file
qualname=testapp
[handler_file]
class=FileHandler
formatter=custom
args=('{log}',)
[formatter_custom]
format=CUSTOM %(levelname)s %(message)s
"""


@pytest.mark.parametrize("kind", ["json", "ini"])
def test_log_config_routes_the_apps_records(serve, tmp_path, kind):
    log = tmp_path / "app.log"
    if kind == "json":
        config = tmp_path / "logging.json"
        LOGGING["handlers"]["file"]["filename"] = str(log)
        config.write_text(json.dumps(LOGGING))
    else:
        config = tmp_path / "logging.ini"
        config.write_text(INI.format(log=log))
    server = serve("wsgi_app:app", extra=["--log-config", str(config)])
    log.write_text("")  # the supervisor checked the config by applying it
    assert request(server, "GET", "/log")[0] == 200
    text = wait_file(str(log))
    assert "CUSTOM INFO app-info-line" in text and "CUSTOM WARNING app-warning-line" in text, text
    # The records went where the config said, not to the default stderr format.
    assert not any("app-info-line" in line for line in server.errors), server.errors


@pytest.mark.parametrize("text,problem", [("{not json", "Expecting property name"),
                                          ('{"version": 7}', "version")])
def test_a_bad_log_config_is_refused(tmp_path, text, problem):
    config = tmp_path / "logging.json"
    config.write_text(text)
    refused("--log-config", str(config)).wait_for(f"--log-config .*{problem}", stderr=True)


def test_a_missing_log_config_is_refused(tmp_path):
    refused("--log-config", str(tmp_path / "logging.ini")).wait_for(
        "--log-config .*No such file", stderr=True)
