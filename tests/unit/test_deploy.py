"""deploy/'s dashboard and alert rules parse, and use only series the server
exports (or that Prometheus itself makes)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from wsstar.server.config import ServerConfig
from wsstar.server.metrics import Metrics
from wsstar.server.service import RendezvousService

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
#: Series Prometheus makes for every target it scrapes.
SCRAPE_SERIES = {"up"}
#: PromQL words that look like series names.
PROMQL = {
    "rate", "increase", "sum", "by", "max_over_time", "changes", "limit", "instance",
}  # fmt: skip
NAME = re.compile(r"\b[a-z_][a-z0-9_]*\b")


def exported() -> set[str]:
    """Series names in /metrics of a single server and of a cluster node
    (whose bus is not started: its series exist before Redis answers).  The
    services need a running loop, as in the tests below."""
    names: set[str] = set()
    for config in (ServerConfig(), ServerConfig(redis_url="redis://127.0.0.1:1/0")):
        text = Metrics(RendezvousService(config)).render().decode()
        names |= {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}
    return names


def series_in(expr: str) -> set[str]:
    without_ranges = re.sub(r"\[[^\]]*\]", "", expr)
    without_labels = re.sub(r"\{[^}]*\}|\"[^\"]*\"", "", without_ranges)
    return {n for n in NAME.findall(without_labels) if n not in PROMQL}


async def test_alert_rules_parse_and_use_real_series() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    [group] = rules["groups"]
    names = exported() | SCRAPE_SERIES
    alerts = {rule["alert"]: rule for rule in group["rules"]}
    assert {
        "WsstarNoPeers",
        "WsstarRelayStreamsCut",
        "WsstarRefusing",
        "WsstarRestarted",
        "WsstarClusterRedisDown",
    } <= set(alerts)
    for rule in alerts.values():
        assert rule["annotations"]["summary"]
        used = series_in(rule["expr"])
        assert used and used <= names, (rule["alert"], used - names)


async def test_dashboard_parses_and_uses_real_series() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "wsstar.json").read_text())
    names = exported()
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 10
    for expr in exprs:
        used = series_in(expr)
        assert used and used <= names, (expr, used - names)
    used_all = set().union(*(series_in(e) for e in exprs))
    assert "rendezvous_peers" in used_all and "wsstar_refused_total" in used_all


def test_the_compose_cluster_and_its_proxy_agree() -> None:
    """Every node of deploy/compose.yml is a cluster node behind the proxy,
    trusting its X-Forwarded-For, and reachable by the others on its link;
    the proxy balances over exactly those nodes, on the port they serve."""
    from wsstar.server.cli import parse_config

    compose = yaml.safe_load((DEPLOY / "compose.yml").read_text())
    services = compose["services"]
    nodes = {name: s for name, s in services.items() if name.startswith("node")}
    assert len(nodes) == 3
    configs = {name: parse_config(s["command"], {}) for name, s in nodes.items()}
    for name, config in configs.items():
        assert config.redis_url == "redis://redis:6379/0"
        assert config.trust_proxy
        assert config.link_advertise == nodes[name]["hostname"] == name
        assert config.link_port
    proxy = (DEPLOY / "haproxy" / "haproxy.cfg").read_text()
    servers = re.findall(r"^\s*server (\S+) (\S+):(\d+)", proxy, re.M)
    assert {(name, host, int(port)) for name, host, port in servers} == {
        (name, name, config.port) for name, config in configs.items()
    }
    assert "option forwardfor" in proxy
    assert "balance source" in proxy  # polling sessions stay on one node
    mounted = services["haproxy"]["volumes"][0].split(":")[0]
    assert (DEPLOY / mounted).resolve() == (DEPLOY / "haproxy" / "haproxy.cfg").resolve()
    # The image the nodes are built from has the Redis client.
    assert ",cluster]" in (DEPLOY.parent / "Dockerfile").read_text()
