"""A 10-project digest, charts included, in English and in Chinese: the time to build it (figures
for the window and the previous period, content, PNG charts, HTML with inlined CSS, the MIME
message, the chat summary) and its size in bytes. Prints figures; asserts nothing.

    python bench/bench_digest.py [--projects 10] [--items 30] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

# The tests' hand-built digest world (tests/digest_worlds.py): 10 projects, sprints, SLA breaches,
# worklogs by Latin and Chinese names. Shared rather than copied so the two stay one world.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from digest_worlds import AS_OF, digest_config, many_projects_world

from trackpulse.charts import register_cjk_font
from trackpulse.digests import build_from_input
from trackpulse.digests.chat import digest_markdown
from trackpulse.digests.content import build_content
from trackpulse.digests.mail import build_email, render_mail


def one(world: object, lang: str) -> dict[str, float]:
    t0 = time.perf_counter()
    data = build_from_input(world, digest_config(language=lang), as_of=AS_OF)  # type: ignore[arg-type]
    t1 = time.perf_counter()
    content = build_content(data)
    mail = render_mail(content)
    t2 = time.perf_counter()
    msg = build_email(mail, sender="trackpulse@example.com", to=["pmo@example.com"], when=AS_OF)
    raw = msg.as_bytes()
    markdown = digest_markdown(content, limit=10**9)
    t3 = time.perf_counter()
    return {"figures_s": t1 - t0, "charts_html_s": t2 - t1, "mime_s": t3 - t2, "total_s": t3 - t0,
            "charts": len(mail.images), "png_bytes": sum(len(p) for _, _, p in mail.images),
            "html_bytes": len(mail.html.encode("utf-8")), "text_bytes": len(mail.text.encode("utf-8")),
            "mime_bytes": len(raw), "chat_bytes": len(markdown.encode("utf-8"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=10)
    parser.add_argument("--items", type=int, default=30, help="items per project")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    font = register_cjk_font()
    print(f"CJK font: {font.path if font else 'none (Chinese labels would be boxes)'}")
    world = many_projects_world(args.projects, args.items)
    one(world, "en")  # warm-up: imports, font loading, template compilation
    print(f"{args.projects} projects x {args.items} items, median of {args.repeat} runs")
    header = ("lang", "total s", "figures s", "charts+html s", "mime s", "charts", "PNG bytes", "HTML bytes",
              "text bytes", "MIME bytes", "chat bytes")
    print(" | ".join(header))
    for lang in ("en", "zh"):
        runs = [one(world, lang) for _ in range(args.repeat)]

        def med(key: str, runs: list[dict[str, float]] = runs) -> float:
            return statistics.median(r[key] for r in runs)

        print(" | ".join([lang, f"{med('total_s'):.2f}", f"{med('figures_s'):.2f}", f"{med('charts_html_s'):.2f}",
                          f"{med('mime_s'):.3f}", f"{med('charts'):.0f}", f"{med('png_bytes'):,.0f}",
                          f"{med('html_bytes'):,.0f}", f"{med('text_bytes'):,.0f}", f"{med('mime_bytes'):,.0f}",
                          f"{med('chat_bytes'):,.0f}"]))


if __name__ == "__main__":
    main()
