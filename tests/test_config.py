"""Configuration resolution: precedence, profiles, key files, URL rules, masking, no leaks."""

from __future__ import annotations

import copy
import dataclasses
import io
import os
from pathlib import Path

import pytest

from revbridge_cli.config.base_url import check_base_url
from revbridge_cli.config.credentials import Secret, mask
from revbridge_cli.config.resolve import Connection, describe, render, require_credentials, resolve
from revbridge_cli.contract import DEVELOPMENT_URL, PRODUCTION_URL
from revbridge_cli.errors import ConfigError

KEY = "rbk_live_0123456789abcdefc3d4"
ENV_KEY = "rbk_env_9876543210zyxwvu7777"
PROFILE_KEY = "rbk_prof_aaaaaaaaaaaaaaaa5555"

CONFIG = """\
default_profile = "production"

[profiles.production]
base_url = "production"
customer_id = "cust_prod"
api_key = "rbk_prof_aaaaaaaaaaaaaaaa5555"
concurrency = 8

[profiles.development]
base_url = "https://api-dev.revbridge.ai"
customer_id = "cust_dev"

[profiles.sandbox]
base_url = "http://127.0.0.1:8787"
customer_id = "cust_sandbox"
"""


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write(tmp_path / "config.toml", CONFIG)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty HOME: no default config file exists there."""
    path = tmp_path / "home"
    path.mkdir()
    return path


def run(config: Path | None = None, flags: dict | None = None, env: dict | None = None, **kw):
    return resolve(
        flags=flags or {}, env=env or {}, config_path=str(config) if config else None, **kw
    )


# Precedence, one connection setting at a time


def test_base_url_flag_beats_env_and_profile(config: Path) -> None:
    env = {"REVBRIDGE_BASE_URL": "https://env.example.com"}
    r = run(config, {"base_url": "https://flag.example.com"}, env)
    assert r.connection.base_url == "https://flag.example.com"
    assert r.sources["base_url"] == "flag --base-url"


def test_base_url_env_beats_profile(config: Path) -> None:
    r = run(config, env={"REVBRIDGE_BASE_URL": "https://env.example.com"})
    assert r.connection.base_url == "https://env.example.com"
    assert r.sources["base_url"] == "env REVBRIDGE_BASE_URL"


def test_base_url_from_profile(config: Path) -> None:
    r = run(config)
    assert r.connection.base_url == PRODUCTION_URL
    assert r.sources["base_url"] == f"profile production ({config})"


def test_base_url_defaults_to_production_without_config(home: Path) -> None:
    r = resolve(flags={}, env={"HOME": str(home)})
    assert r.connection.base_url == PRODUCTION_URL
    assert r.sources["base_url"] == "default"
    assert r.config_path is None


def test_customer_id_flag_beats_env_and_profile(config: Path) -> None:
    r = run(config, {"customer_id": "cust_flag"}, {"REVBRIDGE_CUSTOMER_ID": "cust_env"})
    assert r.connection.customer_id == "cust_flag"


def test_customer_id_env_beats_profile(config: Path) -> None:
    r = run(config, env={"REVBRIDGE_CUSTOMER_ID": "cust_env"})
    assert r.connection.customer_id == "cust_env"
    assert r.sources["customer_id"] == "env REVBRIDGE_CUSTOMER_ID"


def test_customer_id_from_profile(config: Path) -> None:
    assert run(config).connection.customer_id == "cust_prod"


def test_customer_id_defaults_to_none(home: Path) -> None:
    assert resolve(flags={}, env={"HOME": str(home)}).connection.customer_id is None


def test_api_key_flag_beats_env_and_profile(config: Path) -> None:
    r = run(config, {"api_key": KEY}, {"REVBRIDGE_API_KEY": ENV_KEY})
    assert r.connection.api_key is not None
    assert r.connection.api_key.reveal() == KEY
    assert r.sources["api_key"] == "flag --api-key"


def test_api_key_flag_warns_about_shell_history(config: Path) -> None:
    r = run(config, {"api_key": KEY})
    assert any("--api-key-file" in w for w in r.warnings)


def test_api_key_env_beats_profile(config: Path) -> None:
    r = run(config, env={"REVBRIDGE_API_KEY": ENV_KEY})
    assert r.connection.api_key == Secret(ENV_KEY)
    assert r.sources["api_key"] == "env REVBRIDGE_API_KEY"


def test_api_key_from_profile(config: Path) -> None:
    assert run(config).connection.api_key == Secret(PROFILE_KEY)


def test_api_key_defaults_to_none(home: Path) -> None:
    assert resolve(flags={}, env={"HOME": str(home)}).connection.api_key is None


def test_none_flags_count_as_not_given(config: Path) -> None:
    r = run(config, {"base_url": None, "customer_id": None, "concurrency": None})
    assert r.connection.customer_id == "cust_prod"
    assert r.options["concurrency"] == 8


def test_empty_env_var_counts_as_unset(config: Path) -> None:
    assert run(config, env={"REVBRIDGE_CUSTOMER_ID": ""}).connection.customer_id == "cust_prod"


# Profile defaults for other send options


def test_profile_option_is_a_default(config: Path) -> None:
    r = run(config)
    assert r.options == {"concurrency": 8}
    assert r.sources["concurrency"] == f"profile production ({config})"


def test_option_flag_beats_profile(config: Path) -> None:
    r = run(config, {"concurrency": 2})
    assert r.options["concurrency"] == 2
    assert r.sources["concurrency"] == "flag --concurrency"


def test_profile_integer_accepted_for_float_option(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "[profiles.p]\ntimeout = 5\n")
    assert run(path, profile="p").options["timeout"] == 5.0


def test_profile_path_option_is_relative_to_config_folder(tmp_path: Path) -> None:
    path = write(tmp_path / "cfg" / "c.toml", '[profiles.p]\nstate = "state/prod.json"\n')
    assert run(path, profile="p").options["state"] == str(tmp_path / "cfg" / "state/prod.json")


# Profile selection


def test_profile_flag_selects(config: Path) -> None:
    r = run(config, profile="development", env={"REVBRIDGE_PROFILE": "sandbox"})
    assert r.profile == "development"
    assert r.connection.base_url == DEVELOPMENT_URL
    assert r.sources["profile"] == "flag --profile"


def test_profile_env_selects(config: Path) -> None:
    r = run(config, env={"REVBRIDGE_PROFILE": "sandbox"})
    assert r.profile == "sandbox"
    assert r.connection.base_url == "http://127.0.0.1:8787"


def test_default_profile_selects(config: Path) -> None:
    r = run(config)
    assert r.profile == "production"
    assert r.sources["profile"] == f"default_profile in {config}"


def test_no_default_profile_means_no_profile(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", '[profiles.p]\ncustomer_id = "c"\n')
    r = run(path)
    assert r.profile is None
    assert r.connection.customer_id is None


def test_unknown_profile_is_an_error_listing_profiles(config: Path) -> None:
    with pytest.raises(ConfigError, match=r"'staging' is not in .*development, production"):
        run(config, profile="staging")


def test_profile_without_config_file_is_an_error(home: Path) -> None:
    with pytest.raises(ConfigError, match="no config file"):
        resolve(flags={}, env={"HOME": str(home), "REVBRIDGE_PROFILE": "production"})


# Config file location


def test_config_found_under_xdg_config_home(tmp_path: Path) -> None:
    write(tmp_path / "xdg" / "revbridge" / "config.toml", CONFIG)
    r = resolve(flags={}, env={"XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    assert r.profile == "production"


def test_config_found_under_home_dot_config(home: Path) -> None:
    write(home / ".config" / "revbridge" / "config.toml", CONFIG)
    assert resolve(flags={}, env={"HOME": str(home)}).profile == "production"


def test_config_env_names_the_file(config: Path) -> None:
    r = resolve(flags={}, env={"REVBRIDGE_CONFIG": str(config)})
    assert r.config_path == str(config)
    assert r.sources["config"] == "env REVBRIDGE_CONFIG"


def test_missing_named_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        run(tmp_path / "nope.toml")


def test_invalid_toml_is_an_error_with_line(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "[profiles.p\n")
    with pytest.raises(ConfigError, match=r"not valid TOML.*line 1"):
        run(path)


# Validation of the file


def test_unknown_profile_key_names_file_profile_and_key(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "[profiles.prod]\nconcurrancy = 4\n")
    with pytest.raises(ConfigError) as e:
        run(path, profile="prod")
    message = str(e.value)
    assert str(path) in message
    assert "profile prod" in message
    assert "'concurrancy'" in message
    assert "did you mean 'concurrency'" in message


def test_unknown_top_level_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", 'default_profil = "p"\n')
    with pytest.raises(ConfigError, match="unknown top-level key 'default_profil'"):
        run(path)


def test_wrong_type_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", '[profiles.p]\nconcurrency = "8"\n')
    with pytest.raises(ConfigError, match="concurrency must be an integer, not a string"):
        run(path, profile="p")


def test_boolean_is_not_an_integer(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "[profiles.p]\nmax_retries = true\n")
    with pytest.raises(ConfigError, match="max_retries must be an integer"):
        run(path, profile="p")


def test_out_of_range_value_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "[profiles.p]\nmax_users = 5000\n")
    with pytest.raises(ConfigError, match="max_users must be at most 1000"):
        run(path, profile="p")


def test_a_nan_in_a_profile_is_an_error(tmp_path: Path) -> None:
    """TOML can write nan, and NaN passes every comparison with a bound."""
    path = write(tmp_path / "c.toml", "[profiles.p]\ntimeout = nan\n")
    with pytest.raises(ConfigError, match="timeout must be a number, not NaN"):
        run(path, profile="p")


def test_grouping_buffer_below_one_megabyte_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "[profiles.p]\nbuffer_mb = 0\n")
    with pytest.raises(ConfigError, match="buffer_mb must be at least 1"):
        run(path, profile="p")


def test_api_key_and_api_key_file_together_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", '[profiles.p]\napi_key = "x"\napi_key_file = "k"\n')
    with pytest.raises(ConfigError, match="not both"):
        run(path, profile="p")


# Key files


def test_api_key_file_flag_reads_first_line(tmp_path: Path) -> None:
    key_file = write(tmp_path / "k", f"  {KEY}  \nsecond line\n")
    r = run(flags={"api_key_file": str(key_file)}, env={"HOME": str(tmp_path)})
    assert r.connection.api_key == Secret(KEY)
    assert r.sources["api_key"] == f"flag --api-key-file {key_file}"


def test_api_key_file_flag_beats_env_key(tmp_path: Path) -> None:
    key_file = write(tmp_path / "k", KEY)
    env = {"HOME": str(tmp_path), "REVBRIDGE_API_KEY": ENV_KEY}
    assert run(flags={"api_key_file": str(key_file)}, env=env).connection.api_key == Secret(KEY)


def test_api_key_file_expands_tilde(home: Path) -> None:
    write(home / "prod.key", KEY)
    r = resolve(flags={"api_key_file": "~/prod.key"}, env={"HOME": str(home)})
    assert r.connection.api_key == Secret(KEY)


def test_api_key_file_dash_reads_stdin(home: Path) -> None:
    stdin = io.StringIO(KEY + "\n")
    r = resolve(flags={"api_key_file": "-"}, env={"HOME": str(home)}, stdin=stdin)
    assert r.connection.api_key == Secret(KEY)
    assert r.sources["api_key"] == "flag --api-key-file stdin"


def test_profile_api_key_file_expands_tilde(home: Path) -> None:
    write(home / ".config" / "revbridge" / "production.key", KEY)
    write(
        home / ".config" / "revbridge" / "config.toml",
        '[profiles.p]\napi_key_file = "~/.config/revbridge/production.key"\n',
    )
    r = resolve(flags={}, env={"HOME": str(home)}, profile="p")
    assert r.connection.api_key == Secret(KEY)


def test_env_api_key_file_is_read(home: Path) -> None:
    key_file = write(home / "k", KEY)
    env = {"HOME": str(home), "REVBRIDGE_API_KEY_FILE": str(key_file)}
    assert resolve(flags={}, env=env).connection.api_key == Secret(KEY)


def test_missing_key_file_is_an_error(home: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        resolve(flags={"api_key_file": str(home / "nope")}, env={"HOME": str(home)})


def test_empty_key_file_is_an_error(home: Path) -> None:
    key_file = write(home / "k", "\n")
    with pytest.raises(ConfigError, match="is empty"):
        resolve(flags={"api_key_file": str(key_file)}, env={"HOME": str(home)})


def test_key_with_bearer_prefix_is_refused_without_echo(home: Path) -> None:
    key_file = write(home / "k", f"Bearer {KEY}\n")
    with pytest.raises(ConfigError, match="whitespace") as e:
        resolve(flags={"api_key_file": str(key_file)}, env={"HOME": str(home)})
    assert KEY not in str(e.value)


# Permission warnings


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_group_readable_config_warns_with_chmod(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", CONFIG, mode=0o644)
    warnings = run(path).warnings
    assert warnings == [
        f"config file {path} can be read by group or others (mode 0644); fix with: chmod 600 {path}"
    ]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_group_readable_key_file_warns_with_chmod(home: Path) -> None:
    key_file = write(home / "k", KEY, mode=0o644)
    r = resolve(flags={"api_key_file": str(key_file)}, env={"HOME": str(home)})
    assert len(r.warnings) == 1
    assert f"chmod 600 {key_file}" in r.warnings[0]


def test_private_files_draw_no_warning(tmp_path: Path) -> None:
    key_file = write(tmp_path / "k", KEY)
    path = write(tmp_path / "c.toml", f'[profiles.p]\napi_key_file = "{key_file}"\n')
    assert run(path, profile="p").warnings == []


# Base URL rules


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "localhost", "LOCALHOST", "[::1]"])
def test_http_allowed_for_loopback(host: str) -> None:
    assert check_base_url(f"http://{host}:8787/") == f"http://{host}:8787"


@pytest.mark.parametrize("url", ["http://example.com", "http://10.0.0.5:8787", "http://[::2]"])
def test_http_refused_for_other_hosts(url: str) -> None:
    with pytest.raises(ConfigError, match="travel in clear"):
        check_base_url(url)


def test_https_allowed_and_trailing_slash_dropped() -> None:
    assert check_base_url("https://api.example.com:8443/") == "https://api.example.com:8443"


def test_words_mean_vendor_urls() -> None:
    assert check_base_url("production") == PRODUCTION_URL
    assert check_base_url("development") == DEVELOPMENT_URL


def test_url_with_path_is_refused() -> None:
    with pytest.raises(ConfigError, match="without a path"):
        check_base_url("https://api.revbridge.ai/ingest/events")


@pytest.mark.parametrize("url", ["api.revbridge.ai", "ftp://x.example", "https://", "https://a b"])
def test_malformed_url_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="not a URL"):
        check_base_url(url)


def test_url_with_credentials_is_refused() -> None:
    with pytest.raises(ConfigError, match="user name or password"):
        check_base_url("https://user:pw@api.example.com")


def test_bad_url_error_names_its_source(config: Path) -> None:
    with pytest.raises(ConfigError, match=r"\(from env REVBRIDGE_BASE_URL\)"):
        run(config, env={"REVBRIDGE_BASE_URL": "http://example.com"})


# Masking and leaks


def test_mask_long_key_shows_prefix_and_last_four() -> None:
    assert mask(KEY) == "rbk_…c3d4"


def test_mask_short_key_shows_nothing() -> None:
    assert mask("rbk_abc1234") == "****"


def test_secret_str_and_repr_are_masked() -> None:
    secret = Secret(KEY)
    assert KEY not in str(secret)
    assert KEY not in repr(secret)
    assert f"{secret}" == "rbk_…c3d4"


def test_key_not_in_repr_of_resolved(config: Path) -> None:
    r = run(config, {"api_key": KEY})
    assert KEY not in repr(r)
    assert KEY not in str(dataclasses.asdict(r))
    assert KEY not in repr(copy.deepcopy(r))


def test_key_not_in_config_error(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", f'[profiles.p]\napi_key = "{KEY}"\nbogus = 1\n')
    with pytest.raises(ConfigError) as e:
        run(path, profile="p")
    assert KEY not in str(e.value)


def test_describe_masks_key_and_names_sources(config: Path) -> None:
    rows = describe(run(config, env={"REVBRIDGE_API_KEY": ENV_KEY}))
    table = {name: (value, source) for name, value, source in rows}
    assert KEY not in str(rows) and ENV_KEY not in str(rows)
    assert table["api_key"] == ("rbk_…7777", "env REVBRIDGE_API_KEY")
    assert table["customer_id"] == ("cust_prod", f"profile production ({config})")
    assert table["concurrency"] == ("8", f"profile production ({config})")
    assert table["profile"] == ("production", f"default_profile in {config}")


def test_render_shows_rows_and_warnings(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", CONFIG, mode=0o640)
    text = render(run(path))
    assert "rbk_…5555" in text
    assert PROFILE_KEY not in text
    assert "warning: config file" in text


# Credentials check


def test_missing_credentials_names_env_vars_and_flags() -> None:
    with pytest.raises(ConfigError) as e:
        require_credentials(Connection(PRODUCTION_URL, None, None))
    message = str(e.value)
    for name in ("REVBRIDGE_API_KEY", "--api-key-file", "--api-key", "REVBRIDGE_CUSTOMER_ID"):
        assert name in message
    assert "--customer-id" in message
    assert "\n" not in message


def test_missing_customer_id_only_mentions_customer_id() -> None:
    with pytest.raises(ConfigError) as e:
        require_credentials(Connection(PRODUCTION_URL, Secret(KEY), None))
    assert "API key" not in str(e.value)
    assert "REVBRIDGE_CUSTOMER_ID" in str(e.value)


def test_complete_credentials_pass() -> None:
    require_credentials(Connection(PRODUCTION_URL, Secret(KEY), "cust"))


def test_config_error_is_a_usage_error() -> None:
    from revbridge_cli.errors import UsageError

    assert issubclass(ConfigError, UsageError)


@pytest.mark.parametrize("profile", ["production", "development", "sandbox"])
def test_documented_example_config_resolves(home: Path, profile: str) -> None:
    """The example in docs/configuration.md is a working file, so the docs cannot drift."""
    doc = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    example = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    folder = home / ".config" / "revbridge"
    write(folder / "config.toml", example)
    write(folder / "production.key", KEY)
    write(folder / "development.key", KEY)
    r = resolve(flags={}, env={"HOME": str(home)}, profile=profile)
    require_credentials(r.connection)
    assert r.warnings == []
