"""The committed OpenAPI schema of the service (``api/service/openapi.json``).

``python -m crossbar_hil.api.service.openapi`` rewrites it from the code; a test fails when the
schema the service serves drifts from the committed file, so an API change is
always a reviewed change of that file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from crossbar_hil.api.service.app import create_app
from crossbar_hil.api.service.settings import ServiceSettings

SCHEMA_PATH = Path(__file__).with_name("openapi.json")


def generate() -> dict[str, Any]:
    """The schema the service serves (it does not depend on the settings)."""
    return create_app(ServiceSettings(database=Path("unused.sqlite3"))).openapi()


def dumps(schema: dict[str, Any]) -> str:
    """The schema as the committed file holds it."""
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main() -> int:
    """Write the schema file."""
    SCHEMA_PATH.write_text(dumps(generate()), encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
