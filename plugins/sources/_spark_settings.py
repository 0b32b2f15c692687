"""The spark source's settings, apart from its implementation (``_spark``): registering the
source type needs them, not pyspark's glue nor the SQL builders."""

from __future__ import annotations

from typing import Any

__all__ = ["SPARK_FORMATS", "SPARK_SETTINGS_SCHEMA"]

SPARK_FORMATS = ("parquet", "csv", "json", "delta", "orc")

SPARK_SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "master": {"type": "string", "minLength": 1,
                   "description": "Spark master: local[*] (default), spark://..., yarn, or Spark "
                                  "Connect sc://host:port."},
        "table": {"type": "string", "minLength": 1, "description": "A table of the session's catalog."},
        "path": {"description": "File(s) or folder(s) to read, relative to the project file.",
                 "oneOf": [{"type": "string", "minLength": 1},
                           {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}}]},
        "format": {"enum": list(SPARK_FORMATS), "description": "The files' format (default parquet)."},
        "query": {"type": "string", "minLength": 1,
                  "description": "A Spark SQL SELECT to aggregate (trusted project-owner SQL)."},
    },
    "oneOf": [{"required": ["table"]}, {"required": ["path"]}, {"required": ["query"]}],
}
