"""The page at / and the API docs are served by the service from installed packages, offline."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from crossbar_hil.api.service.app import create_app
from crossbar_hil.api.service.routers.page import STATIC_DIR
from crossbar_hil.api.service.settings import ServiceSettings
from crossbar_hil.runs.store import CHANGES
from crossbar_hil.training.config import PRESETS, TrainingConfig

pytestmark = pytest.mark.system

URL_IN_PAGE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\(\s*["']?([^"')]+)""")


@pytest.fixture
def client(settings: ServiceSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def local(url: str) -> bool:
    return url.startswith(("/", "#", "data:")) or not re.match(r"^[a-z][a-z0-9+.-]*:|^//", url, re.I)


def test_the_page_is_served_at_the_root_with_a_policy_allowing_its_own_host_only(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    policy = r.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "connect-src 'self'" in policy
    for url in filter(None, (a or b for a, b in URL_IN_PAGE.findall(r.text))):
        assert local(url), url
        if url.startswith("/ui/"):
            assert client.get(url).status_code == 200, url


def test_every_script_and_stylesheet_is_served_and_names_no_other_host(client: TestClient) -> None:
    names = sorted(p.name for p in STATIC_DIR.iterdir() if p.suffix in (".js", ".css"))
    assert "app.js" in names and "style.css" in names
    for name in names:
        r = client.get(f"/ui/{name}")
        assert r.status_code == 200, name
        code = r.text.replace('"http://www.w3.org/2000/svg"', "")  # The SVG namespace: a name, not a request.
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", code), f"{name} names another host"


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_api_docs_load_their_files_from_the_service(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200
    urls = [a or b for a, b in URL_IN_PAGE.findall(r.text)]
    assert urls and all(local(u) for u in urls), urls
    assert "cdn." not in r.text and "fonts.googleapis" not in r.text
    policy = r.headers["content-security-policy"]  # What the bundles fetch by themselves: ours only.
    assert "default-src 'self'" in policy and "img-src 'self' data: blob:" in policy
    assert "connect-src 'self'" in policy
    for url in urls:
        if url.startswith("/docs-assets/"):
            asset = client.get(url)
            assert asset.status_code == 200 and len(asset.content) > 1000, url


def test_presets_spell_out_every_training_setting(client: TestClient) -> None:
    body = client.get("/presets").json()
    assert body["default"] == "recommended"
    assert set(body["presets"]) == set(PRESETS)
    for name, values in PRESETS.items():
        assert body["presets"][name] == TrainingConfig(**values).model_dump(mode="json")
    assert body["presets"]["reference"]["beta"] == 6e6 and body["presets"]["reference"]["rule"] == "manhattan"


def test_the_run_page_listens_to_every_status_change_event_the_service_names() -> None:
    """The page follows a run's status by the names of the status events: ``status`` and each
    change of its own (the core's CHANGES); a change missing from the page would leave it stale."""
    code = (STATIC_DIR / "run.js").read_text()
    found = re.search(r"const STATUS_EVENTS = \[([^\]]*)\]", code)
    assert found is not None, "run.js declares no STATUS_EVENTS"
    assert re.findall(r'"([a-z_]+)"', found.group(1)) == ["status", *CHANGES]
