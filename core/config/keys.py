"""The words of a cluster file and the limits on its values."""

from __future__ import annotations

import re

from core.model import CheckKind
from core.store.settings import STORE_KEYS

ENV_CONFIG = "LOADMASTER_CONFIG"
DEFAULT_CONFIG = "cluster.toml"

SECTIONS = ("cluster", "defaults", "hosts", "services", "policy", "api")
CLUSTER_KEYS = ("name", "poll_interval", "failure_timeout", "state_dir", "demo", "enforce_limits", *STORE_KEYS)
DEFAULTS_KEYS = ("user", "port", "identity_file", "known_hosts", "host_key_policy", "connect_timeout")
HOST_KEYS = ("name", "address", "port", "user", "labels", "capacity", "reserve", "identity_file", "jump", "demo")
SERVICE_KEYS = (
    "name", "command", "replicas", "cpu", "mem", "resources", "max_per_host",
    "spread_over", "require", "avoid", "priority", "min_healthy", "autoscale", "check",
    "env", "workdir", "user", "stop_signal", "stop_timeout", "log_max_size", "log_keep",
)  # fmt: skip
STOP_SIGNALS = ("TERM", "INT", "QUIT", "HUP", "USR1", "USR2", "KILL")
MAX_LOG_KEEP = 100
MIN_LOG_SIZE = 4096  # smaller would rotate on every few lines
AUTOSCALE_KEYS = ("min", "max", "cpu_target", "window", "scale_down_window")
CHECK_KEYS = (
    "kind", "path", "status", "command", "port", "interval", "timeout", "grace", "unhealthy_after", "healthy_after",
)  # fmt: skip
CHECK_ONLY = {"path": CheckKind.HTTP, "status": CheckKind.HTTP, "command": CheckKind.EXEC}
API_KEYS = ("listen", "tls_cert", "tls_key")
POLICY_KEYS = (
    "strategy",
    "auto_apply",
    "max_moves_per_cycle",
    "cooldown",
    "solver_time_limit",
    "settle",
    "solver_workers",
    "max_stops_per_reload",
)

LOCAL_ADDRESS = "local"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_ENVNAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
USER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9._-]{0,31}")
MAX_DEPTH = 8  # tables and arrays inside each other; the deepest a valid file needs is 3
MAX_REPLICAS = 100_000  # per service: beyond it a plan's model would not fit in memory
# A replica's command reaches the host inside one SSH command line, twice (hex for its record and
# quoted for the shell): Linux caps one argument at 128 KiB (MAX_ARG_STRLEN), so 32 KiB quoted
# leaves room for the runtime script and the other arguments.
MAX_COMMAND_BYTES = 32 * 1024
# The env travels in the same command line, hex-encoded (twice its bytes): 4 KiB of names and values keeps a
# start with the longest command under the cap (tests/hostlink/test_pure.py builds one).
MAX_ENV_BYTES = 4 * 1024
MAX_PATH_BYTES = 4096  # PATH_MAX
BAD_PORT = 0  # stands in for an invalid port so that it takes no part in the address:port check
