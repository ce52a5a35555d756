"""Code coverage import (METRICS.md §12): Cobertura XML, coverage.py JSON, LCOV and JaCoCo
XML, the format detected from the content, reduced to covered and valid lines.

`parse_coverage` is pure (text in, `LineCoverage` out); `read_coverage` adds the file
read and turns every failure into a configuration error naming the file.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from trackpulse.errors import ConfigError
from trackpulse.metrics.frames import LineCoverage


class CoverageFormatError(ValueError):
    """The text is none of the four formats, or lacks the totals its format should carry."""


def _cobertura(root: ET.Element) -> LineCoverage:
    valid = root.get("lines-valid")
    covered = root.get("lines-covered")
    if valid is not None and covered is not None:
        return LineCoverage.of_lines(int(float(covered)), int(float(valid)))
    rate = root.get("line-rate")
    if rate is None:
        raise CoverageFormatError("Cobertura root has neither lines-covered/lines-valid nor line-rate")
    return LineCoverage(float(rate), None)  # a rate alone says nothing of the code's size


def _jacoco(root: ET.Element) -> LineCoverage:
    for counter in root.findall("counter"):  # report-level counters are the root's direct children
        if counter.get("type") == "LINE":
            covered, missed = int(counter.get("covered", "0")), int(counter.get("missed", "0"))
            return LineCoverage.of_lines(covered, covered + missed)
    raise CoverageFormatError("JaCoCo report has no report-level LINE counter")


def _lcov(text: str) -> LineCoverage:
    hit = found = 0
    seen = False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("LH:"):
            hit += int(line[3:])
            seen = True
        elif line.startswith("LF:"):
            found += int(line[3:])
            seen = True
    if not seen:
        raise CoverageFormatError("LCOV tracefile has no LF/LH records")
    return LineCoverage.of_lines(hit, found)


def parse_coverage(text: str) -> LineCoverage:
    """Covered and valid lines of a coverage report in any of the four formats."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        totals = json.loads(stripped).get("totals")
        if not isinstance(totals, dict) or "covered_lines" not in totals or "num_statements" not in totals:
            raise CoverageFormatError("coverage.py JSON lacks totals.covered_lines / totals.num_statements")
        return LineCoverage.of_lines(int(totals["covered_lines"]), int(totals["num_statements"]))
    if stripped.startswith("<"):
        # ElementTree never fetches the external DTD JaCoCo's DOCTYPE names.
        root = ET.fromstring(stripped)
        if root.tag == "coverage":
            return _cobertura(root)
        if root.tag == "report":
            return _jacoco(root)
        raise CoverageFormatError(f"unknown XML root <{root.tag}>")
    if "end_of_record" in text or "SF:" in text:
        return _lcov(text)
    raise CoverageFormatError("not Cobertura, coverage.py JSON, LCOV or JaCoCo")


def read_coverage(path: str | Path, where: str = "coverage") -> LineCoverage:
    """`parse_coverage` of a file; any failure is a ConfigError naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        return parse_coverage(text)
    except (OSError, UnicodeDecodeError, ValueError, ET.ParseError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{where}: cannot read coverage report {path}: {reason}") from None
